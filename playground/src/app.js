// The playground page: joins a LiveKit room with a token from this page's own server, opens
// the microphone once the agent listens, plays the agent, and shows the agent's state, the
// live transcript (lk.transcription text streams) and, per turn, the latency the user hears:
// from the end of their speech (mic level) to the start of the agent's audio (its level).
// Everything it shows is also in `window.playground`, which the browser test reads.
import { ConnectionState, ParticipantKind, Room, RoomEvent, Track } from "livekit-client";

const VOICED = 0.01; // RMS (full scale 1.0) above which a 20 ms sample counts as sound
const GAP_MS = 400; // silence shorter than this does not end a span of speech
const AGENT_WAIT_MS = 15000; // connected this long without an agent: say why and what to do
const $ = (id) => document.getElementById(id);

const view = (window.playground = {
  connection: "disconnected",
  room: null,
  agent: null, // the agent participant's identity, once it joined
  agentState: null, // its lk.agent.state attribute: initializing, listening, thinking, speaking
  transcript: [], // {who: "user" | "agent", segment, text, final}
  speech: { user: [], agent: [] }, // voiced spans [startMs, endMs] per side, page clock
  turns: [], // {latencyMs}: user stopped speaking -> first agent audio
  error: null,
  notice: null, // what to do when no agent joins
});

const room = new Room({ adaptiveStream: false, dynacast: false });
let audioContext = null;
let sampler = null;
let agentWait = null; // the timer that says so when no agent joins
const meters = {}; // side -> {analyser, buffer, voiced, lastVoiced}

function show() {
  $("connection").textContent = view.connection;
  $("room").textContent = view.room ?? "–";
  $("agent").textContent = view.agent ?? "not joined";
  $("agent-state").textContent = view.agentState ?? "–";
  $("mic").textContent = room.localParticipant.isMicrophoneEnabled ? "Mute mic" : "Unmute mic";
  const connected = view.connection !== ConnectionState.Disconnected;
  $("connect").textContent = connected ? "Disconnect" : "Connect";
  $("mic").disabled = !connected;
  $("transcript").replaceChildren(
    ...view.transcript.map((t) => {
      const li = document.createElement("li");
      li.className = `${t.who}${t.final ? "" : " interim"}`;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = t.who === "agent" ? "Agent" : "You";
      li.append(who, t.text);
      return li;
    }),
  );
  $("turns").replaceChildren(
    ...view.turns.map((t) => {
      const li = document.createElement("li");
      li.textContent = `${Math.round(t.latencyMs)} ms`;
      return li;
    }),
  );
  $("error").textContent = view.error ?? view.notice ?? "";
}

// After a disconnect nothing plays: the meters rest and no line is left half-said.
function settle() {
  for (const side of Object.keys(meters)) delete meters[side];
  $("mic-level").style.width = "0%";
  $("agent-level").style.width = "0%";
  for (const t of view.transcript) t.final = true;
}

// ---------------------------------------------------------------- audio levels and latency
function measure(side, mediaStreamTrack) {
  const source = audioContext.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser); // an analyser is processed without reaching the speakers
  meters[side] = { analyser, buffer: new Float32Array(analyser.fftSize), lastVoiced: -Infinity };
}

function sample() {
  const now = performance.now();
  for (const [side, m] of Object.entries(meters)) {
    m.analyser.getFloatTimeDomainData(m.buffer);
    const rms = Math.sqrt(m.buffer.reduce((sum, x) => sum + x * x, 0) / m.buffer.length);
    $(`${side === "user" ? "mic" : "agent"}-level`).style.width = `${Math.min(100, rms * 400)}%`;
    if (rms < VOICED) continue;
    const spans = view.speech[side];
    const last = spans[spans.length - 1];
    if (last && now - last[1] < GAP_MS) last[1] = now;
    else {
      spans.push([now, now]);
      if (side === "agent") agentStarted(now);
    }
  }
}

// A reply starts when the agent's audio starts after the user spoke and fell silent.
function agentStarted(now) {
  const user = view.speech.user[view.speech.user.length - 1];
  const before = view.speech.agent[view.speech.agent.length - 2];
  if (!user || now - user[1] < GAP_MS / 2) return; // the user is still talking
  if (before && before[0] > user[0]) return; // this turn was already counted
  view.turns.push({ latencyMs: now - user[1] });
  show();
}

// ---------------------------------------------------------------- the room
function isAgent(p) {
  return p.kind === ParticipantKind.AGENT || p.attributes["lk.agent.state"] !== undefined;
}

function agentSeen(p) {
  if (!isAgent(p)) return;
  view.agent = p.identity;
  view.notice = null;
  clearTimeout(agentWait);
  view.agentState = p.attributes["lk.agent.state"] ?? view.agentState;
  // the microphone opens when the agent listens, so the user's first words reach it
  if (view.agentState === "listening" && !meters.user) setMic(true);
  show();
}

async function setMic(on) {
  try {
    const pub = await room.localParticipant.setMicrophoneEnabled(on);
    if (on && pub?.track && !meters.user) measure("user", pub.track.mediaStreamTrack);
  } catch (e) {
    view.error = `microphone: ${e.message}`;
  }
  show();
}

room
  .on(RoomEvent.ConnectionStateChanged, (s) => {
    view.connection = s;
    show();
  })
  .on(RoomEvent.Disconnected, () => {
    // the next Connect opens a new room; the transcript and latencies stay on the page
    Object.assign(view, { agent: null, agentState: null, notice: null });
    clearTimeout(agentWait);
    settle();
    show();
  })
  .on(RoomEvent.ParticipantConnected, agentSeen)
  .on(RoomEvent.ParticipantAttributesChanged, (_, p) => agentSeen(p))
  .on(RoomEvent.ParticipantDisconnected, (p) => {
    if (p.identity === view.agent) {
      Object.assign(view, { agent: null, agentState: null });
      delete meters.agent;
      $("agent-level").style.width = "0%";
    }
    show();
  })
  .on(RoomEvent.TrackSubscribed, (track, _, p) => {
    if (track.kind !== Track.Kind.Audio || !isAgent(p)) return;
    document.body.append(track.attach()); // Chrome feeds WebRTC audio to Web Audio only when played
    measure("agent", track.mediaStreamTrack);
  });

room.registerTextStreamHandler("lk.transcription", async (reader, { identity }) => {
  const attrs = reader.info.attributes ?? {};
  const segment = attrs["lk.segment_id"] ?? reader.info.id;
  const who = identity === room.localParticipant.identity ? "user" : "agent";
  let entry = view.transcript.find((t) => t.segment === segment && t.who === who);
  if (!entry) view.transcript.push((entry = { who, segment, text: "", final: false }));
  let text = ""; // each stream carries the segment's whole text so far
  try {
    for await (const chunk of reader) {
      text += chunk;
      entry.text = text;
      show();
    }
  } catch {
    // the room went away mid-stream (Disconnect while the agent talks): the line ends here
    entry.final = true;
    show();
    return;
  }
  entry.final = attrs["lk.transcription_final"] === "true" || who === "agent";
  show();
});

async function connect() {
  if (room.state !== ConnectionState.Disconnected) return room.disconnect();
  $("connect").disabled = true;
  try {
    audioContext ??= new AudioContext(); // created in a click, so the page may play sound
    const res = await fetch(`token${location.search}`);
    if (!res.ok) throw new Error(`token: ${res.status} ${await res.text()}`);
    const { url, token, room: name, no_agent: noAgent } = await res.json();
    view.room = name;
    view.error = null;
    await room.connect(url, token);
    agentWait = setTimeout(() => {
      if (view.agent === null && room.state === ConnectionState.Connected) {
        view.notice = noAgent;
        show();
      }
    }, AGENT_WAIT_MS);
    await room.startAudio();
    sampler ??= setInterval(sample, 20);
    room.remoteParticipants.forEach(agentSeen);
  } catch (e) {
    view.error = String(e.message ?? e);
  }
  $("connect").disabled = false;
  show();
}

$("connect").addEventListener("click", connect);
$("mic").addEventListener("click", () => setMic(!room.localParticipant.isMicrophoneEnabled));
show();
