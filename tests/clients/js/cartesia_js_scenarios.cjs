// Scenarios for Cartesia's own JS SDK (@cartesia/cartesia-js) against the emulator, used as
// its README and docs examples use it. Only the environment points it at the emulator:
// CARTESIA_BASE_URL, CARTESIA_API_KEY and NODE_EXTRA_CA_CERTS (the SDK always dials wss://).
// Two entry points load the SDK the two ways Node can: cartesia_js.cjs (CommonJS build, the
// `ws` package) and cartesia_js.mjs (ES module build, Node's own WebSocket, which sends the key
// in the query string as browsers do). Each prints one JSON line with what the client
// received; tests/clients/test_js_clients.py checks it against the emulator's records.
const { createHash } = require('node:crypto');

const VOICE = { mode: 'id', id: 'f786b574-daa5-4673-aa0c-cbe3e8534c02' };
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const concat = (chunks) => Buffer.concat(chunks.map((c) => Buffer.from(c)));

async function run(Cartesia, args) {
  const client = new Cartesia({ apiKey: process.env.CARTESIA_API_KEY });
  async function bytes() {
    const response = await client.tts.generate({
      model_id: args.model ?? 'sonic-3.6',
      transcript: args.text,
      voice: VOICE,
      output_format: args.output_format,
    });
    const body = Buffer.from(await response.arrayBuffer());
    return {
      status: response.status,
      content_type: response.headers.get('content-type'),
      body_b64: body.toString('base64'),
    };
  }

  async function websocket() {
    const ws = await client.tts.websocket();
    ws.on('error', () => {}); // errors arrive on the context's receive() too
    try {
      const ctx = ws.context({
        model_id: args.model ?? 'sonic-3.6',
        voice: VOICE,
        output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: 24000 },
        language: 'en',
        add_timestamps: true,
      });
      for (const [i, text] of args.text.entries()) {
        await ctx.push({ transcript: text, flush: i === 0 });
      }
      await ctx.no_more_inputs();
      const types = [];
      const audio = [];
      const words = [];
      const flushIds = new Set();
      let error = null;
      try {
        for await (const event of ctx.receive()) {
          types.push(event.type);
          if (event.type === 'chunk') {
            audio.push(event.audio);
            flushIds.add(event.flush_id);
          }
          if (event.type === 'timestamps') words.push(...event.word_timestamps.words);
        }
      } catch (err) {
        error = { name: err.constructor.name, message: err.message };
      }
      const pcm = concat(audio);
      return {
        context_id: ctx.contextId,
        types,
        audio_sha256: sha256(pcm),
        audio_bytes: pcm.length,
        words,
        flush_ids: [...flushIds].sort(),
        error,
      };
    } finally {
      ws.close();
    }
  }

  async function websocketCancel() {
    const ws = await client.tts.websocket();
    ws.on('error', () => {});
    try {
      const format = { container: 'raw', encoding: 'pcm_s16le', sample_rate: 24000 };
      const first = ws.context({ model_id: 'sonic-3.6', voice: VOICE, output_format: format });
      const second = ws.context({ model_id: 'sonic-3.6', voice: VOICE, output_format: format });
      await first.push({ transcript: args.text[0] });
      await first.push({ transcript: args.text[1] });
      await first.cancel();
      await second.push({ transcript: args.text[2] });
      await second.no_more_inputs();
      const types = [];
      const audio = [];
      for await (const event of second.receive()) {
        types.push(event.type);
        if (event.type === 'chunk') audio.push(event.audio);
      }
      const pcm = concat(audio);
      return {
        cancelled: first.contextId,
        context_id: second.contextId,
        types,
        audio_sha256: sha256(pcm),
      };
    } finally {
      ws.close();
    }
  }

  async function sse() {
    const stream = await client.tts.generateSSE({
      model_id: 'sonic-3.6',
      transcript: args.text,
      voice: VOICE,
      output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: 16000 },
      add_timestamps: true,
    });
    const types = [];
    const audio = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'chunk') audio.push(Buffer.from(event.data, 'base64'));
    }
    const pcm = concat(audio);
    return { types, audio_sha256: sha256(pcm) };
  }

  async function badModel() {
    let httpError = null;
    try {
      await client.tts.generate({
        model_id: args.model,
        transcript: 'Hello.',
        voice: VOICE,
        output_format: { container: 'mp3', sample_rate: 44100, bit_rate: 128000 },
      });
    } catch (err) {
      httpError = { name: err.constructor.name, status: err.status, error: err.error };
    }
    const ws = await client.tts.websocket();
    ws.on('error', () => {});
    let wsError = null;
    const events = [];
    try {
      const ctx = ws.context({
        model_id: args.model,
        voice: VOICE,
        output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: 24000 },
      });
      await ctx.push({ transcript: 'Hello.' });
      try {
        for await (const event of ctx.receive()) events.push(event);
      } catch (err) {
        wsError = { name: err.constructor.name, message: err.message };
      }
    } finally {
      ws.close();
    }
    return { http_error: httpError, ws_error: wsError, ws_events: events };
  }

  const scenarios = {
    bytes,
    websocket,
    websocket_cancel: websocketCancel,
    sse,
    bad_model: badModel,
  };
  try {
    const result = await scenarios[args.scenario]();
    process.stdout.write(JSON.stringify(result) + '\n');
  } catch (err) {
    const failed = `${err.constructor.name}: ${err.message}`;
    process.stdout.write(JSON.stringify({ failed }) + '\n');
    process.exitCode = 1;
  }
}

module.exports = { run };
