// LiveKit's Node plugin (@livekit/agents-plugin-cartesia) against the emulator, with its
// defaults: only `baseUrl` points at the emulator; the key comes from CARTESIA_API_KEY and the
// CA from NODE_EXTRA_CA_CERTS (the plugin always uses https for /tts/bytes).
//
//   node livekit_node.mjs '{"scenario": "stream", "base_url": "https://127.0.0.1:1234",
//                           "text": ["Hello there. ", "How are you today? "]}'
//
// Prints one JSON line with what the plugin produced; tests/clients/test_js_clients.py checks it
// against the emulator's records.
import { initializeLogger, tts } from '@livekit/agents';
import * as cartesia from '@livekit/agents-plugin-cartesia';

initializeLogger({ pretty: false, level: 'warn' });
const args = JSON.parse(process.argv[2] ?? '{}');

function pcmOf(frames) {
  return Buffer.concat(
    frames.map((f) => Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength)),
  );
}

async function synthesize(plugin) {
  const frames = [];
  const requestIds = new Set();
  for await (const audio of plugin.synthesize(args.text.join(''))) {
    frames.push(audio.frame);
    requestIds.add(audio.requestId);
  }
  return {
    request_ids: [...requestIds],
    sample_rate: frames[0]?.sampleRate,
    audio_b64: pcmOf(frames).toString('base64'),
  };
}

async function stream(plugin) {
  const s = plugin.stream();
  for (const text of args.text) s.pushText(text);
  s.flush();
  s.endInput();
  const frames = [];
  const requestIds = new Set();
  const words = [];
  for await (const audio of s) {
    if (audio === tts.SynthesizeStream.END_OF_STREAM) break;
    frames.push(audio.frame);
    requestIds.add(audio.requestId);
    for (const timed of audio.timedTranscripts ?? []) words.push(timed.text.trim());
  }
  s.close();
  return {
    request_ids: [...requestIds],
    sample_rate: frames[0]?.sampleRate,
    audio_b64: pcmOf(frames).toString('base64'),
    words,
  };
}

const scenarios = { synthesize, stream };
const plugin = new cartesia.TTS({ baseUrl: args.base_url });
try {
  const result = await scenarios[args.scenario](plugin);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ failed: `${err.constructor.name}: ${err.message}` }) + '\n');
  process.exitCode = 1;
} finally {
  await plugin.close();
}
