// @cartesia/cartesia-js loaded as an ES module: its ESM build cannot load `ws`, so it uses the
// runtime's WebSocket (Node 22+, or Node 20 with --experimental-websocket) and puts the key,
// version and client name in the query string, as in a browser.
//   node [--experimental-websocket] cartesia_js.mjs '{"scenario": "websocket", ...}'
import Cartesia from '@cartesia/cartesia-js';
import scenarios from './cartesia_js_scenarios.cjs';

await scenarios.run(Cartesia, JSON.parse(process.argv[2] ?? '{}'));
