// The chat page: finds out who is signed in, lets them pick a bot, and talks to it over /ws.
//
// Delivery rules, so that nothing is lost and nothing shows twice:
// - every stored message has a per-session `seq` (1, 2, 3, …); the transcript holds at most
//   one element per seq, ordered by seq, and remembers the highest seq it has without gaps;
// - after every (re)connect the page sends `resume` from that seq, then re-sends each message
//   that has no `ack` yet with its original `client_id`, which the server never processes twice;
// - messages typed while the socket is down wait in the outbox (kept in sessionStorage, as is
//   the unsent text in the message box) until the connection is back.

import { api, load, newClientId, save, STORAGE } from "./http.js";
import { $, state } from "./state.js";
import {
  actionButton,
  bubble,
  delivered,
  followNewMessages,
  hideNotice,
  insertInOrder,
  markFailed,
  onSuggestion,
  pendingBubble,
  place,
  refreshSuggestions,
  scrollDown,
  setMeta,
  setSuggestions,
  setTyping,
  showNotice,
  timeOf,
} from "./transcript.js";

const MAX_FRAME_BYTES = 60 * 1024;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 8000;
const HEARTBEAT_MS = 20000;
const PONG_TIMEOUT_MS = 10000;
const GAP_WAIT_MS = 1000;

// -- views --------------------------------------------------------------------

const VIEWS = ["view-loading", "view-signed-out", "view-picker", "view-chat"];

function show(view) {
  for (const id of VIEWS) $(id).hidden = id !== view;
  const signedIn = view === "view-picker" || view === "view-chat";
  $("sign-out").hidden = !signedIn;
  $("user-name").hidden = !signedIn;
  $("new-chat").hidden = view !== "view-chat";
  $("bot-title").hidden = view !== "view-chat";
}

// Neither signed in nor out: the server could not tell. Say why and offer to try again.
function showProblem(text) {
  show("view-loading");
  $("loading-text").textContent = text;
  $("retry").hidden = false;
  $("retry").focus();
}

function showSignedOut(reason) {
  stopSocket();
  state.user = null;
  $("signed-out-reason").textContent = reason || "Sign in to start a conversation.";
  show("view-signed-out");
  $("sign-in").focus();
}

async function showPicker(note) {
  stopSocket();
  state.session = null;
  save(STORAGE.session, null);
  $("picker-note").textContent = note || "";
  $("picker-note").hidden = !note;
  show("view-picker");
  try {
    state.bots = (await api("GET", "/api/bots")).bots;
  } catch (failure) {
    handleFailure(failure);
    return;
  }
  renderBots();
  const first = $("bot-list").querySelector("button:not(:disabled)");
  (first || $("picker-title")).focus();
}

function renderBots() {
  const list = $("bot-list");
  list.replaceChildren();
  if (!state.bots.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = "No bots are available to you yet.";
    list.append(empty);
    return;
  }
  for (const bot of state.bots) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "bot-choice";
    button.dataset.botId = bot.id;
    button.dataset.botName = bot.name;
    button.disabled = bot.status !== "online";
    const name = document.createElement("span");
    name.className = "bot-name";
    name.textContent = bot.name;
    const description = document.createElement("span");
    description.className = "bot-description";
    description.textContent = bot.description || "";
    button.append(name, description);
    if (bot.status !== "online") {
      const status = document.createElement("span");
      status.className = "bot-status";
      status.textContent = "Offline";
      button.append(status);
    }
    button.addEventListener("click", () => startSession(bot, button));
    item.append(button);
    list.append(item);
  }
}

function handleFailure(failure) {
  if (failure.status === 401) {
    showSignedOut("Your sign-in has ended. Sign in again to continue.");
  } else if (failure.code === "RATE_LIMITED") {
    const wait = failure.retryAfter ? ` Try again in ${duration(failure.retryAfter)}.` : "";
    showNotice("warn", `Too many requests.${wait}`);
  } else {
    showNotice("error", failure.message || "Something went wrong.");
  }
}

// -- sessions -----------------------------------------------------------------

async function startSession(bot, button) {
  if (button) button.disabled = true;
  try {
    const created = await api("POST", "/api/session/create", { bot_id: bot.id });
    openChat({ id: created.session_id, botId: bot.id, botName: bot.name });
  } catch (failure) {
    handleFailure(failure);
  } finally {
    if (button) button.disabled = false;
  }
}

function openChat(session) {
  stopSocket();
  state.session = session;
  save(STORAGE.session, session);
  state.lastSeq = 0;
  state.seen.clear();
  state.streams.clear();
  state.ended = false;
  state.blockedUntil = 0;
  $("transcript").replaceChildren();
  hideNotice();
  setSuggestions([]);
  setTyping(false);
  $("composer-input").disabled = false;
  $("send").disabled = false;
  $("bot-title").textContent = session.botName || "Conversation";

  // Messages queued for this session before a reload are still owed to the server.
  const stored = load(STORAGE.outbox);
  state.outbox = [];
  if (stored && stored.sessionId === session.id) {
    for (const item of stored.items) {
      state.outbox.push({ ...item, el: pendingBubble(item.content) });
    }
  }
  saveOutbox();
  $("composer-input").value = load(STORAGE.draft) || "";
  autosize();

  show("view-chat");
  connect();
  $("composer-input").focus();
}

function endChat(reason) {
  state.ended = true;
  stopSocket();
  save(STORAGE.session, null);
  setTyping(false);
  setSuggestions([]);
  for (const entry of state.outbox) markFailed(entry.el, "Not sent: the conversation has ended.");
  state.outbox = [];
  save(STORAGE.outbox, null);
  $("composer-input").disabled = true;
  $("send").disabled = true;
  setConnectionBanner("");

  const text =
    reason === "expired"
      ? "This conversation expired after a period of inactivity."
      : "This conversation has ended.";
  const again = actionButton("Start a new conversation", () => {
    const bot = state.bots.find((b) => b.id === state.session?.botId);
    if (bot) startSession(bot);
    else showPicker();
  });
  const other = actionButton("Choose another bot", () => showPicker());
  showNotice("info", text, [again, other]);
  again.focus();
}

// -- the socket ---------------------------------------------------------------

function connect() {
  clearTimeout(state.retryTimer);
  if (!state.session || state.ended) return;
  state.wanted = true;
  state.synced = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  state.socket = socket;
  if (state.connection !== "reconnecting") setConnection("connecting");

  socket.addEventListener("open", () => {
    if (socket !== state.socket) return;
    setConnection("online");
    synchronise();
    startHeartbeat();
  });
  socket.addEventListener("message", (event) => {
    if (socket !== state.socket) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  });
  socket.addEventListener("close", (event) => {
    if (socket === state.socket) dropped(event.code);
  });
}

// Catch up from the last seq held, then deliver whatever is still owed.
function synchronise() {
  if (Date.now() < state.blockedUntil) return;
  $("transcript").setAttribute("aria-busy", "true");
  sendFrame({ type: "resume", session_id: state.session.id, after_seq: state.lastSeq });
  for (const entry of state.outbox) sendQueued(entry);
  // Frames are answered in order, so this pong marks the end of the replay.
  sendFrame({ type: "ping" });
}

function sendFrame(frame) {
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

function sendQueued(entry) {
  const sent = sendFrame({
    type: "message",
    session_id: state.session.id,
    content: entry.content,
    client_id: entry.clientId,
  });
  setMeta(entry.el, sent ? "Sending…" : "Waiting for the connection…");
}

function dropped(code) {
  stopHeartbeat();
  state.socket = null;
  state.synced = false;
  // Text streamed on a dead socket is never completed there; the replay brings it whole.
  for (const el of state.streams.values()) el.remove();
  state.streams.clear();
  if (!state.wanted) return;
  if (code === 4401) {
    showSignedOut("Your sign-in has ended. Sign in again to continue.");
    return;
  }
  if (code === 4403) {
    state.wanted = false;
    setConnection("idle");
    showNotice("error", "This page may not use your sign-in from this address.");
    return;
  }
  let delay = state.retryDelay ? Math.min(state.retryDelay * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
  if (code === 4429) {
    delay = Math.max(delay, RETRY_MAX_MS);
    showNotice("warn", "Too many messages in a short time. Reconnecting in a moment…");
  }
  state.retryDelay = delay;
  setConnection("reconnecting");
  for (const entry of state.outbox) setMeta(entry.el, "Waiting for the connection…");
  // A little jitter keeps many tabs from reconnecting in lockstep after a restart.
  state.retryTimer = setTimeout(connect, delay * (0.8 + Math.random() * 0.4));
}

function stopSocket() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  clearTimeout(state.blockTimer);
  clearTimeout(state.gapTimer);
  stopHeartbeat();
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000, "bye");
  setConnection("idle");
}

// A socket can die silently (sleeping laptop, lost Wi-Fi); pings find out.
function startHeartbeat() {
  stopHeartbeat();
  state.heartbeatTimer = setInterval(() => {
    if (!sendFrame({ type: "ping" })) return;
    clearTimeout(state.pongTimer);
    state.pongTimer = setTimeout(forceReconnect, PONG_TIMEOUT_MS);
  }, HEARTBEAT_MS);
}

function stopHeartbeat() {
  clearInterval(state.heartbeatTimer);
  clearTimeout(state.pongTimer);
}

function forceReconnect() {
  const socket = state.socket;
  if (!socket) return;
  state.socket = null;
  socket.close();
  dropped(1006);
}

function setConnection(connection) {
  state.connection = connection;
  document.body.dataset.connection = connection;
  if (connection === "reconnecting") {
    setConnectionBanner(
      "Connection lost. Reconnecting… Messages you send now go out once it is back.",
    );
  } else {
    setConnectionBanner("");
  }
}

function setConnectionBanner(text) {
  $("connection").textContent = text;
  $("connection").hidden = !text;
}

// -- frames -------------------------------------------------------------------

function onFrame(frame) {
  if (frame.session_id && state.session && frame.session_id !== state.session.id) return;
  switch (frame.type) {
    case "ack":
      onAck(frame);
      break;
    case "message":
      onMessage(frame);
      break;
    case "typing":
      if (frame.sender === "bot") setTyping(true);
      break;
    case "session_ended":
      endChat(frame.reason);
      break;
    case "error":
      onError(frame.error || {});
      break;
    case "pong":
      clearTimeout(state.pongTimer);
      if (!state.synced) {
        state.synced = true;
        state.retryDelay = 0;
        $("transcript").removeAttribute("aria-busy");
        // A warning about the connection or the pace is over once the page is caught up.
        if ($("notice").classList.contains("warn") && Date.now() >= state.blockedUntil) {
          hideNotice();
        }
      }
      break;
    default:
      break;
  }
}

function onAck(frame) {
  const entry = takeQueued(frame.client_id);
  if (!entry) return;
  if (state.seen.has(frame.seq)) {
    // The replay already showed this message; drop the optimistic copy.
    entry.el.remove();
    return;
  }
  delivered(entry.el);
  place(entry.el, frame.seq);
  watchForGap();
  setTyping(true);
  refreshSuggestions();
}

function onMessage(frame) {
  if (frame.is_complete === false) {
    grow(frame);
    return;
  }
  const seq = Number(frame.seq);
  if (!Number.isInteger(seq) || state.seen.has(seq)) return;

  let el = null;
  if (frame.sender === "user" && frame.client_id) {
    const entry = takeQueued(frame.client_id);
    if (entry) {
      el = entry.el;
      delivered(el);
    }
  }
  if (!el && frame.message_id && state.streams.has(frame.message_id)) {
    el = state.streams.get(frame.message_id);
    state.streams.delete(frame.message_id);
    el.classList.remove("streaming");
    el.removeAttribute("aria-busy");
  }
  if (!el) el = bubble(frame.sender === "user" ? "user" : "bot");
  el.querySelector(".text").textContent = frame.content ?? "";
  el.suggestions = frame.sender === "bot" ? frame.suggestions || [] : [];
  setMeta(el, timeOf(frame.created_at));
  place(el, seq);
  watchForGap();

  if (frame.sender === "bot") setTyping(false);
  refreshSuggestions();
}

// Streamed text: grow one element in place until the complete frame replaces its text.
function grow(frame) {
  const key = frame.message_id || `seq-${frame.seq}`;
  if (frame.seq && state.seen.has(Number(frame.seq))) return;
  let el = state.streams.get(key);
  if (!el) {
    el = bubble("bot");
    el.classList.add("streaming");
    el.setAttribute("aria-busy", "true");
    state.streams.set(key, el);
    insertInOrder(el, Number(frame.seq) || Infinity);
  }
  el.querySelector(".text").textContent += frame.delta || "";
  setTyping(false);
  if (state.stick) scrollDown();
}

function onError(error) {
  switch (error.code) {
    case "SESSION_ENDED":
      // A session_ended frame may have come first and said why (expired); keep its word.
      if (!state.ended) endChat("ended");
      break;
    case "NOT_FOUND":
      save(STORAGE.outbox, null);
      showPicker("That conversation is no longer available. Choose a bot to start a new one.");
      break;
    case "UNAUTHORIZED":
      showSignedOut("Your sign-in has ended. Sign in again to continue.");
      break;
    case "RATE_LIMITED":
      rateLimited(Number(error.details?.retry_after) || 5);
      break;
    default:
      showNotice("error", error.message || "The server refused that.");
  }
}

function duration(seconds) {
  return seconds < 90 ? `${seconds} s` : `${Math.ceil(seconds / 60)} min`;
}

// Refused for going too fast: hold everything back, then catch up and re-send.
function rateLimited(seconds) {
  state.blockedUntil = Date.now() + seconds * 1000;
  setTyping(false);
  const wait = duration(seconds);
  for (const entry of state.outbox) setMeta(entry.el, `Not sent yet: retrying in ${wait}.`);
  showNotice(
    "warn",
    `You are sending messages faster than allowed. Waiting ${wait} before trying again.`,
  );
  clearTimeout(state.blockTimer);
  state.blockTimer = setTimeout(() => {
    state.blockedUntil = 0;
    hideNotice();
    if (state.connection === "online") synchronise();
  }, seconds * 1000);
}

// -- the outbox ---------------------------------------------------------------

function saveOutbox() {
  if (!state.session) return;
  save(STORAGE.outbox, {
    sessionId: state.session.id,
    items: state.outbox.map(({ clientId, content }) => ({ clientId, content })),
  });
}

function takeQueued(clientId) {
  if (!clientId) return null;
  const index = state.outbox.findIndex((entry) => entry.clientId === clientId);
  if (index < 0) return null;
  const [entry] = state.outbox.splice(index, 1);
  saveOutbox();
  return entry;
}

// The server never skips a seq; a hole means a frame went missing, so ask again.
function watchForGap() {
  clearTimeout(state.gapTimer);
  const highest = Math.max(0, ...state.seen.keys());
  if (highest <= state.lastSeq) return;
  state.gapTimer = setTimeout(() => {
    if (state.connection === "online" && Date.now() >= state.blockedUntil) {
      sendFrame({ type: "resume", session_id: state.session.id, after_seq: state.lastSeq });
    }
  }, GAP_WAIT_MS);
}

// -- composing ----------------------------------------------------------------

function sendMessage(text) {
  const content = text.trim();
  if (!content || !state.session || state.ended) return false;
  const frame = JSON.stringify({ type: "message", session_id: state.session.id, content });
  if (new TextEncoder().encode(frame).length > MAX_FRAME_BYTES) {
    showNotice("error", "That message is too long to send.");
    return false;
  }
  const entry = { clientId: newClientId(), content, el: pendingBubble(content) };
  state.outbox.push(entry);
  saveOutbox();
  setSuggestions([]);
  if (state.connection === "online" && Date.now() >= state.blockedUntil) sendQueued(entry);
  else if (Date.now() < state.blockedUntil) setMeta(entry.el, "Not sent yet: waiting to retry.");
  return true;
}

function autosize() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight}px`;
}

function wireComposer() {
  const input = $("composer-input");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if (sendMessage(input.value)) {
      input.value = "";
      save(STORAGE.draft, null);
      autosize();
    }
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter starts a new line; never in the middle of an IME composition.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    save(STORAGE.draft, input.value || null);
    autosize();
  });
}

async function signOut() {
  const button = $("sign-out");
  button.disabled = true;
  let endSessionUrl = null;
  try {
    endSessionUrl = (await api("POST", "/auth/logout"))?.end_session_url || null;
  } catch (failure) {
    // 401: the sign-in had already ended, which is what the user wanted anyway.
    if (failure.status !== 401) {
      button.disabled = false;
      handleFailure(failure);
      return;
    }
  }
  button.disabled = false;
  save(STORAGE.session, null);
  save(STORAGE.outbox, null);
  save(STORAGE.draft, null);
  state.session = null;
  state.outbox = [];
  if (endSessionUrl) {
    // The directory keeps a sign-in of its own; end it too. It sends the browser back here.
    save(STORAGE.signedOut, true);
    stopSocket();
    location.assign(endSessionUrl);
    return;
  }
  showSignedOut("You have signed out.");
}

// -- start --------------------------------------------------------------------

async function boot() {
  wireComposer();
  followNewMessages();
  onSuggestion((text) => sendMessage(text));
  $("sign-out").addEventListener("click", signOut);
  $("new-chat").addEventListener("click", () => showPicker());
  $("retry").addEventListener("click", () => location.reload());
  window.addEventListener("online", () => {
    if (state.wanted && state.connection === "reconnecting") connect();
  });

  try {
    state.user = await api("GET", "/api/users/me");
  } catch (failure) {
    const justLeft = load(STORAGE.signedOut);
    save(STORAGE.signedOut, null);
    if (failure.status === 401) showSignedOut(justLeft ? "You have signed out." : "");
    else if (failure.code === "RATE_LIMITED") {
      const wait = failure.retryAfter ? ` Try again in ${duration(failure.retryAfter)}.` : "";
      showProblem(`Too many requests from you right now.${wait}`);
    } else showProblem(`The server did not answer as expected: ${failure.message}`);
    return;
  }
  $("user-name").textContent = state.user.username;

  try {
    state.bots = (await api("GET", "/api/bots")).bots;
  } catch (failure) {
    state.bots = [];
  }

  // This tab's conversation first; otherwise the most recently active one.
  let session = load(STORAGE.session);
  if (!session) {
    try {
      const current = await api("GET", "/api/session");
      if (current.status === "active") {
        const bot = state.bots.find((b) => b.id === current.bot_id);
        session = { id: current.session_id, botId: current.bot_id, botName: bot?.name };
      }
    } catch {
      session = null;
    }
  }
  if (session) openChat(session);
  else showPicker();
}

boot();
