// What the page knows, in one object. `window.__botserver` exposes it to tests and the
// curious: `window.__botserver.socket` is the live WebSocket.

export const $ = (id) => document.getElementById(id);

export const state = {
  user: null,
  bots: [],
  session: null, // {id, botId, botName}
  socket: null,
  connection: "idle", // idle | connecting | online | reconnecting
  wanted: false,
  synced: false,
  retryDelay: 0,
  retryTimer: 0,
  heartbeatTimer: 0,
  pongTimer: 0,
  gapTimer: 0,
  typingTimer: 0,
  blockedUntil: 0,
  blockTimer: 0,
  lastSeq: 0, // highest seq held with none missing below it
  seen: new Map(), // seq -> transcript element
  streams: new Map(), // message_id -> element still growing
  outbox: [], // [{clientId, content, el}] not yet acknowledged
  ended: false,
  stick: true, // keep the newest message in view
};
window.__botserver = state;
