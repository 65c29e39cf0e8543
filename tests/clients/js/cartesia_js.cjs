// @cartesia/cartesia-js loaded as CommonJS: its WebSocket uses the `ws` package with headers.
//   node cartesia_js.cjs '{"scenario": "websocket", "text": ["Hello there. "]}'
const Cartesia = require('@cartesia/cartesia-js');
const { run } = require('./cartesia_js_scenarios.cjs');

run(Cartesia, JSON.parse(process.argv[2] ?? '{}'));
