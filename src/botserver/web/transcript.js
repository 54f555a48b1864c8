// The transcript on screen: message bubbles in seq order, suggestions, typing, notices.

import { $, state } from "./state.js";

const TYPING_TIMEOUT_MS = 15000;

// What a click on a suggestion does; the conversation sets it.
let pick = () => {};

export function onSuggestion(handler) {
  pick = handler;
}

export function bubble(sender) {
  const el = document.createElement("li");
  el.className = `msg ${sender}`;
  const who = document.createElement("span");
  who.className = "visually-hidden";
  who.textContent = sender === "user" ? "You: " : `${state.session?.botName || "Bot"}: `;
  const text = document.createElement("p");
  text.className = "text";
  const meta = document.createElement("span");
  meta.className = "meta";
  el.append(who, text, meta);
  return el;
}

export function pendingBubble(content) {
  const el = bubble("user");
  el.classList.add("pending");
  el.querySelector(".text").textContent = content;
  setMeta(el, "Waiting for the connection…");
  $("transcript").append(el);
  scrollDown();
  return el;
}

export function delivered(el) {
  el.classList.remove("pending");
  setMeta(el, timeOf(new Date().toISOString()));
}

export function markFailed(el, why) {
  el.classList.remove("pending");
  el.classList.add("failed");
  setMeta(el, why);
}

export function setMeta(el, text) {
  el.querySelector(".meta").textContent = text;
}

export function timeOf(iso) {
  const when = iso ? new Date(iso) : new Date();
  if (Number.isNaN(when.getTime())) return "";
  return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Put an element at its seq: after every smaller seq, before larger ones and unsent messages.
export function insertInOrder(el, seq) {
  const transcript = $("transcript");
  let before = null;
  for (const child of transcript.children) {
    if (child === el) continue;
    const other = child.dataset.seq ? Number(child.dataset.seq) : Infinity;
    if (other > seq) {
      before = child;
      break;
    }
  }
  transcript.insertBefore(el, before);
}

export function place(el, seq) {
  el.dataset.seq = String(seq);
  state.seen.set(seq, el);
  insertInOrder(el, seq);
  while (state.seen.has(state.lastSeq + 1)) state.lastSeq += 1;
  if (state.stick || el.classList.contains("user")) scrollDown();
}

// The transcript follows new messages unless the reader has scrolled up to read older ones,
// also when suggestions, notices or the typing line take away some of its height.
export function followNewMessages() {
  const transcript = $("transcript");
  let lastTop = 0;
  transcript.addEventListener("scroll", () => {
    // Only the reader scrolls up; a shrinking transcript or our own scrolling never does.
    const top = transcript.scrollTop;
    if (top < lastTop) state.stick = isNearBottom();
    else if (isNearBottom()) state.stick = true;
    lastTop = top;
  });
  new ResizeObserver(() => {
    if (state.stick) scrollDown();
  }).observe(transcript);
}

export function isNearBottom() {
  const t = $("transcript");
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

export function scrollDown() {
  const t = $("transcript");
  t.scrollTop = t.scrollHeight;
}

// Suggestions belong to the latest message only, and only when it is the bot's.
export function refreshSuggestions() {
  const last = [...$("transcript").children].reverse().find((el) => el.dataset.seq);
  const pending = state.outbox.length > 0;
  setSuggestions(!pending && last?.classList.contains("bot") ? last.suggestions || [] : []);
}

export function setSuggestions(suggestions) {
  const box = $("suggestions");
  const hadFocus = box.contains(document.activeElement);
  box.replaceChildren();
  for (const text of suggestions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "suggestion";
    button.textContent = text;
    button.addEventListener("click", () => {
      pick(text);
      $("composer-input").focus();
    });
    box.append(button);
  }
  box.hidden = suggestions.length === 0;
  if (hadFocus) $("composer-input").focus();
}

export function setTyping(on) {
  clearTimeout(state.typingTimer);
  $("typing").hidden = !on;
  if (on) {
    $("typing-text").textContent = `${state.session?.botName || "The bot"} is typing…`;
    state.typingTimer = setTimeout(() => setTyping(false), TYPING_TIMEOUT_MS);
  }
}

export function showNotice(kind, text, actions = []) {
  const notice = $("notice");
  notice.className = `notice ${kind}`;
  $("notice-text").textContent = text;
  $("notice-actions").replaceChildren(...actions);
  notice.hidden = false;
  if (!$("view-chat").hidden) return;
  // Outside the conversation the notice would be invisible; use the picker's note instead.
  if (!$("view-picker").hidden) {
    $("picker-note").textContent = text;
    $("picker-note").hidden = false;
  }
}

export function hideNotice() {
  $("notice").hidden = true;
  $("notice-actions").replaceChildren();
}

export function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button";
  button.textContent = label;
  button.addEventListener("click", onClick);
  return button;
}
