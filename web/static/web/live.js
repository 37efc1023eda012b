/* Live: the JSON API, the command tracker and the WebSocket, in plain JavaScript
 * (an ES module; app.js and the modules in app/ import it).
 *
 * The WebSocket is a hint and the status endpoint is the truth: every command
 * still pending is re-fetched on each (re)connect, polled every second while
 * the socket is down, and checked now and then even while it is up (a push can
 * be dropped). A push is applied only if its seq is greater than the last one
 * seen for that command, so duplicates and late pushes change nothing.
 */

const FINAL = new Set(["succeeded", "rejected", "failed"]);
const RANK = { accepted: 0, running: 1, succeeded: 2, rejected: 2, failed: 2 };
const POLL_DISCONNECTED_MS = 1000;
const POLL_CONNECTED_MS = 5000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;

// --- HTTP --------------------------------------------------------------------

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || (status >= 500 ? "server_error" : "error");
    this.details = (body && body.details) || {};
  }
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, { code: "network_error", message: "The server cannot be reached." });
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (response.status === 401 || response.status === 403) {
    if (data && (data.code === "not_authenticated" || data.code === "authentication_failed")) {
      window.location.assign("/login/?next=" + encodeURIComponent(location.pathname + location.hash));
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, status: response.status, headers: response.headers };
}

/* GET a read endpoint that reflects `position`; retry while the read model is behind. */
async function read(path, position) {
  const url = position ? path + (path.includes("?") ? "&" : "?") + "min_position=" + position : path;
  for (let attempt = 0; ; attempt++) {
    try {
      return (await api(url)).data;
    } catch (error) {
      const behind = error.code === "read_model_behind" || error.status === 503 || error.status === 0;
      if (!behind || attempt >= 10) throw error;
      await sleep(300 * (attempt + 1));
    }
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function randomId() {
  if (window.crypto && crypto.getRandomValues) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return String(Date.now()) + String(Math.random()).slice(2);
}

// --- Events --------------------------------------------------------------------

const listeners = new Map();
function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, []);
  listeners.get(type).push(fn);
}
function emit(type, payload) {
  for (const fn of listeners.get(type) || []) {
    try {
      fn(payload);
    } catch (error) {
      console.error(error);
    }
  }
}

// --- Commands --------------------------------------------------------------------

const pending = new Map(); // id -> {status, progress, seq, resolve, onUpdate}
const lastSeq = new Map(); // id -> highest seq applied (kept after completion)
const early = new Map(); // id -> [seq, command] pushed before the POST answered
const stats = { pushes: 0, polls: 0, resolvedBy: {} };

/* Send a command; resolve with its final status object (never rejects on refusal). */
async function send(name, body, { onUpdate } = {}) {
  const key = randomId();
  let accepted;
  for (let attempt = 0; ; attempt++) {
    try {
      accepted = (await api(`/api/commands/${name}/`, {
        method: "POST",
        body,
        headers: { "Idempotency-Key": key },
      })).data;
      break;
    } catch (error) {
      // Retrying with the same key is safe: the server answers the same command.
      const transient = error.status === 0 || error.status === 503 || error.status === 502;
      if (!transient || attempt >= 5) {
        return { status: "rejected", error: { code: error.code, message: error.message, details: error.details }, refusedBeforeAccept: true };
      }
      await sleep(500 * 2 ** attempt);
    }
  }
  return track(accepted, onUpdate);
}

function track(command, onUpdate) {
  return new Promise((resolve) => {
    const entry = { status: command.status, progress: command.progress || 0, resolve, onUpdate, since: Date.now() };
    pending.set(command.id, entry);
    persist();
    const buffered = early.get(command.id);
    early.delete(command.id);
    if (FINAL.has(command.status)) {
      settle(command.id, command, "answer");
    } else if (buffered) {
      applyPush(buffered[0], buffered[1]);
    }
    if (pending.has(command.id)) refresh(command.id);
  });
}

function applyPush(seq, command) {
  stats.pushes++;
  const seen = lastSeq.get(command.id) || 0;
  if (seq <= seen) return false;
  lastSeq.set(command.id, seq);
  emit("command", command);
  if (!pending.has(command.id)) {
    if (early.size > 200) early.clear();
    early.set(command.id, [seq, command]);
    return true;
  }
  update(command.id, command, "push");
  return true;
}

/* Apply a polled status: statuses only move forward, so never go back. */
function applyPolled(command) {
  const entry = pending.get(command.id);
  if (!entry) return;
  if (RANK[command.status] < RANK[entry.status]) return;
  if (RANK[command.status] === RANK[entry.status] && (command.progress || 0) < entry.progress) return;
  update(command.id, command, "poll");
}

function update(id, command, via) {
  const entry = pending.get(id);
  if (!entry) return;
  entry.status = command.status;
  entry.progress = Math.max(entry.progress, command.progress || 0);
  if (entry.onUpdate) {
    try {
      entry.onUpdate(command);
    } catch (error) {
      console.error(error);
    }
  }
  if (FINAL.has(command.status)) settle(id, command, via);
}

function settle(id, command, via) {
  const entry = pending.get(id);
  if (!entry) return;
  pending.delete(id);
  persist();
  stats.resolvedBy[id] = via;
  entry.resolve(command);
}

async function refresh(id) {
  try {
    const { data } = await api(`/api/commands/${id}/`);
    stats.polls++;
    applyPolled(data);
  } catch (error) {
    if (error.status === 404) {
      const entry = pending.get(id);
      if (entry) settle(id, { id, status: "failed", error: { code: "not_found", message: "This command is unknown." } }, "poll");
    }
    // Otherwise the server is away: the next poll or reconnect tries again.
  }
}

function refreshAll() {
  return Promise.all(Array.from(pending.keys(), refresh));
}

function persist() {
  try {
    sessionStorage.setItem("pending-commands", JSON.stringify(Array.from(pending.keys())));
  } catch (error) {
    /* storage is optional */
  }
}

// --- WebSocket -------------------------------------------------------------------

let socket = null;
let attempt = 0;
let reconnectTimer = null;
let pollTimer = null;
let state = "connecting";

function setState(next) {
  state = next;
  emit("connection", next);
}

function connect() {
  reconnectTimer = null;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/commands/";
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (error) {
    scheduleReconnect();
    return;
  }
  socket = ws;
  setState("connecting");
  ws.onopen = () => {
    if (socket !== ws) return;
    attempt = 0;
    // The shop's stock, pushed once the catalogue has applied it.
    ws.send(JSON.stringify({ type: "catalogue.subscribe" }));
    setState("live");
    schedulePolling();
    refreshAll();
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (message.type === "command.status") applyPush(message.seq, message.command);
    else emit(message.type, message);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    setState("offline");
    schedulePolling();
    scheduleReconnect();
  };
}

/* Exponential backoff with full jitter: a restarted server is not stampeded. */
function scheduleReconnect() {
  if (reconnectTimer) return;
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  attempt++;
  const delay = ceiling / 2 + Math.random() * (ceiling / 2);
  reconnectTimer = setTimeout(connect, delay);
}

function schedulePolling() {
  if (pollTimer) clearInterval(pollTimer);
  const every = state === "live" ? POLL_CONNECTED_MS : POLL_DISCONNECTED_MS;
  pollTimer = setInterval(() => {
    if (state === "live") {
      // Only commands that have been quiet for a while: a push may have been dropped.
      const quiet = Array.from(pending.entries()).filter(([, e]) => Date.now() - e.since > POLL_CONNECTED_MS);
      quiet.forEach(([id]) => refresh(id));
    } else {
      refreshAll();
    }
  }, every);
}

function start() {
  connect();
  schedulePolling();
  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
  }, 25000);
}

export const Live = {
  api,
  read,
  send,
  on,
  start,
  ApiError,
  stats,
  pending,
  state: () => state,
  socket: () => socket,
};

// The page's handle on the client, for the browser tests and the console.
window.Live = Live;

export { api, read, send, on, start, ApiError };
