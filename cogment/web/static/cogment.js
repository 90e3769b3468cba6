// cogment.js: play a Cogment trial from a web page, through `cogment web`.
// A small ES module with no dependency; the bridge serves it at /cogment.js.
//
//   import { connect } from "/cogment.js";
//   const session = await connect();                  // the bridge that served the page
//   session.on("tick", (tick) => draw(tick.observation));
//   session.on("end", (end) => show(end.reason));
//   const joined = session.trial ?? await session.start({ config: { seed: 7 } });
//   await session.act({ direction: "RIGHT" });        // resolves with the next tick
//
// Every request returns a Promise: it resolves with the frame answering it and rejects with a
// CogmentError (`.code`: the protocol's error code, `.message`: why). The frames are those of
// the WebSocket protocol (README, "cogment web"); messages are JSON as protobuf's JSON mapping
// writes them, with the field names of the .proto files.

export const PROTOCOL = 1;

const STORAGE_KEY = "cogment.session";
const RETRY_DELAYS = [250, 500, 1000, 2000, 4000]; // ms between reconnection attempts
const RECONNECT_FOR = 60000; // ms: give up reconnecting after that long
const REFUSALS = ["origin_refused", "bridge_full", "bad_request"]; // no point in retrying

/** An error frame, or a request that could not be sent; `code` is the protocol's code. */
export class CogmentError extends Error {
  constructor(code, message, frame = null) {
    super(message);
    this.name = "CogmentError";
    this.code = code;
    this.frame = frame;
  }
}

/**
 * Opens a session with the bridge and resolves once it is ready (its `welcome` came).
 * @param {object} [options]
 * @param {string} [options.url] the WebSocket's address (default: /ws of this page's host)
 * @param {boolean} [options.remember=true] keep the session id and the slot in
 *   sessionStorage, so that a reloaded page (or a reconnection) joins its slot again
 * @param {boolean} [options.resume=true] join the remembered slot now, if there is one
 * @param {boolean} [options.reconnect=true] reconnect (and join the slot again) when the
 *   socket closes unexpectedly (the bridge restarted, the network dropped)
 * @returns {Promise<Session>}
 */
export async function connect(options = {}) {
  const session = new Session(options);
  await session._open();
  if (session._options.resume) await session.resume();
  return session;
}

export class Session {
  constructor(options = {}) {
    this._options = { remember: true, resume: true, reconnect: true, ...options };
    this._options.url = this._options.url || defaultUrl();
    this._handlers = new Map();
    this._pending = new Map();
    this._nextId = 1;
    this._ws = null;
    this._closing = false;
    this._saved = this._options.remember ? load() : {};
    /** The session id (a joined slot can be joined again with it). */
    this.sessionId = this._saved.sessionId || null;
    /** The project: actor classes, trial config type, human slots, message types. */
    this.project = null;
    /** The bridge's largest frame, in bytes. */
    this.maxFrame = null;
    /** The `joined` frame of the trial this tab plays (null before start/join). */
    this.trial = null;
    /** The latest observation (deltas applied), and its tick. */
    this.observation = null;
    this.tickId = -1;
    /** The `end` frame once the trial is over, else null. */
    this.ended = null;
  }

  /**
   * Calls `handler` for each event of that name; returns a function that stops it.
   * Events: "joined", "tick", "observation" (observation, tick), "reward" (reward, tick),
   * "message" (message, tick), "end", "error" (error frames no request waits for),
   * "close" ({code, reason, reconnecting}), "reconnect" (the joined frame, or null).
   */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this._handlers.get(event).delete(handler);
  }

  /** Starts a trial and takes its (first) human slot; resolves with the `joined` frame. */
  start({ actorClass, config, userId } = {}) {
    return this.request({ type: "start", actor_class: actorClass, config, user_id: userId });
  }

  /** Joins the human slot `actorId` of trial `trialId`; resolves with the `joined` frame. */
  join({ trialId, actorId, actorClass } = {}) {
    return this.request({
      type: "join",
      trial_id: trialId,
      actor_id: actorId,
      actor_class: actorClass,
    });
  }

  /** Sends the action for the current tick; resolves with the next `tick` frame. */
  act(action) {
    return this.request({ type: "act", action });
  }

  /**
   * Gives feedback `to` actors (an actor id, a class name, or a list of them).
   * `userData`: an optional message, `{"@type": "pkg.Message", ...fields}`.
   */
  feedback({ to, value, confidence = 1, tickId = -1, userData } = {}) {
    return this.request({
      type: "feedback",
      to,
      value,
      confidence,
      tick_id: tickId,
      user_data: userData,
    });
  }

  /**
   * Sends a message `to` actors (ids, class names, "environment" or -1, or a list of them);
   * `payload`: `{"@type": "pkg.Message", ...fields}`. Delivered at the end of the tick.
   */
  message({ to, payload } = {}) {
    return this.request({ type: "message", to, payload });
  }

  /** Ends the trial; resolves with the `end` frame. */
  end() {
    return this.request({ type: "end" });
  }

  /** Joins the remembered slot again (a reloaded page); resolves with `joined` or null. */
  async resume() {
    const slot = this._saved.slot;
    if (!slot || this.trial) return this.trial;
    try {
      return await this.join(slot);
    } catch (error) {
      this._remember(null); // the trial is over, or the slot is someone else's now
      return null;
    }
  }

  /** Closes the socket for good (the trial goes on without this tab until it is reaped). */
  close() {
    this._closing = true;
    if (this._ws) this._ws.close(1000, "closed by the page");
  }

  /** Sends a request frame (keys with an undefined value are left out). */
  request(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new CogmentError("disconnected", "not connected to the bridge"));
    }
    const id = this._nextId++;
    const text = JSON.stringify({ ...frame, id });
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      ws.send(text);
    });
  }

  // ---------------------------------------------------------------- internals

  _emit(event, ...args) {
    for (const handler of this._handlers.get(event) || []) {
      try {
        handler(...args);
      } catch (error) {
        console.error(`cogment.js: a "${event}" handler failed`, error);
      }
    }
  }

  _open() {
    return new Promise((resolve, reject) => {
      let attempts = 0;
      const attempt = () => {
        const url = new URL(this._options.url);
        if (this.sessionId) url.searchParams.set("session", this.sessionId);
        const ws = new WebSocket(url);
        let welcomed = false;
        ws.onmessage = (event) => {
          let frame;
          try {
            frame = JSON.parse(event.data);
          } catch (error) {
            console.error("cogment.js: a frame that is not JSON", event.data);
            return;
          }
          if (!welcomed) {
            if (frame.type === "welcome") {
              welcomed = true;
              this._ws = ws;
              this._welcome(frame);
              resolve(this);
            } else if (frame.type === "error" && frame.code === "session_in_use" && attempts < 8) {
              attempts += 1; // a reloaded page can come back before its old socket is gone
              ws.onclose = () => setTimeout(attempt, 250);
            } else if (frame.type === "error" && frame.code === "session_in_use") {
              this.sessionId = null; // open in another tab (a duplicated one): a new session
              this._saved = {};
              ws.onclose = () => setTimeout(attempt, 0);
            } else if (frame.type === "error") {
              reject(new CogmentError(frame.code, frame.message, frame));
            }
            return;
          }
          this._frame(frame);
        };
        ws.onclose = (event) => {
          if (!welcomed) {
            reject(new CogmentError("disconnected", closeText(event)));
            return;
          }
          this._closed(ws, event);
        };
      };
      attempt();
    });
  }

  _welcome(frame) {
    this.sessionId = frame.session_id;
    this.project = frame.project;
    this.maxFrame = frame.max_frame;
    if (frame.protocol !== PROTOCOL) {
      console.warn(`cogment.js speaks protocol ${PROTOCOL}, the bridge ${frame.protocol}`);
    }
    this._remember(this._saved.slot || null);
  }

  _frame(frame) {
    switch (frame.type) {
      case "joined":
        this.trial = frame;
        this.ended = null;
        this.observation = frame.observation;
        this.tickId = frame.tick_id;
        this._remember({
          trialId: frame.trial_id,
          actorId: frame.actor_id,
          actorClass: frame.actor_class,
        });
        this._emit("joined", frame);
        break;
      case "tick":
        this.observation = frame.observation;
        this.tickId = frame.tick_id;
        this._emit("tick", frame);
        this._emit("observation", frame.observation, frame);
        if (frame.reward) this._emit("reward", frame.reward, frame);
        for (const message of frame.messages) this._emit("message", message, frame);
        break;
      case "end":
        if (!this.ended || this.ended.trial_id !== frame.trial_id) {
          this.ended = frame;
          if (this.trial && this.trial.trial_id === frame.trial_id) this._remember(null);
          this._emit("end", frame);
        }
        break;
      case "error":
        if (frame.id === undefined) this._emit("error", frame);
        break;
      default:
        break;
    }
    const waiting = frame.id !== undefined ? this._pending.get(frame.id) : undefined;
    if (waiting) {
      this._pending.delete(frame.id);
      if (frame.type === "error") waiting.reject(new CogmentError(frame.code, frame.message, frame));
      else waiting.resolve(frame);
    }
  }

  _closed(ws, event) {
    if (this._ws !== ws) return;
    this._ws = null;
    for (const waiting of this._pending.values()) {
      waiting.reject(new CogmentError("disconnected", closeText(event)));
    }
    this._pending.clear();
    const reconnecting =
      this._options.reconnect && !this._closing && event.code !== 1000 && event.code !== 1008;
    this._emit("close", { code: event.code, reason: event.reason, reconnecting });
    if (reconnecting) this._reconnect(Date.now());
  }

  _reconnect(since, attempt = 0) {
    const delay = RETRY_DELAYS[Math.min(attempt, RETRY_DELAYS.length - 1)];
    setTimeout(async () => {
      if (this._closing) return;
      try {
        await this._open();
      } catch (error) {
        if (Date.now() - since < RECONNECT_FOR && !REFUSALS.includes(error.code)) {
          this._reconnect(since, attempt + 1);
        } else {
          this._emit("close", { code: 1006, reason: error.message, reconnecting: false });
        }
        return;
      }
      const wasPlaying = this.trial && !this.ended;
      this.trial = null;
      const joined = wasPlaying ? await this.resume() : null;
      this._emit("reconnect", joined);
    }, delay);
  }

  _remember(slot) {
    if (!this._options.remember) return;
    this._saved = { sessionId: this.sessionId, slot: slot || undefined };
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this._saved));
    } catch (error) {
      // storage is off (private mode): a reload starts afresh
    }
  }
}

function defaultUrl() {
  const url = new URL("/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "{}") || {};
  } catch (error) {
    return {};
  }
}

function closeText(event) {
  const reason = event.reason ? `: ${event.reason}` : "";
  return `the connection to the bridge closed (code ${event.code}${reason})`;
}
