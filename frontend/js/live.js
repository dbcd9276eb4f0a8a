// The live connection: GET /ws with the session cookie, frames {type, seq, data}. After a drop it reconnects
// with ?since=<last seq> and gets what it missed; a `resync` frame (too far behind, or the server restarted)
// means: reload the data, not the page. Events that arrive while the data reloads wait, then apply on top.
// Close code 4001: the session ended or the user's rights changed (deactivated, logged out, new role or teams):
// `onEnded` starts again from the session (the page reloads: the login screen, or the inbox with the new rights).

const BACKOFF_MS = [500, 1000, 2000, 3000, 5000];
const SESSION_ENDED = 4001;

export class Live {
  constructor({ onEvent, onReload, onState, onEnded = () => location.reload() }) {
    this.onEnded = onEnded;
    this.onEvent = onEvent;
    this.onReload = onReload;
    this.onState = onState;
    this.lastSeq = null;
    this.attempt = 0;
    this.socket = null;
    this.stopped = false;
    this.needsReload = true; // the first `ready` loads the data: socket first, then snapshot, so nothing is lost
    this.loading = false;
    this.held = [];
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }

  send(type, data) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type, data }));
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const since = this.lastSeq === null ? "" : "?since=" + encodeURIComponent(this.lastSeq);
    const socket = new WebSocket(scheme + location.host + "/ws" + since);
    this.socket = socket;
    this.onState(this.attempt ? "reconnecting" : "connecting");
    socket.addEventListener("message", (message) => this.frame(message.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (event.code === SESSION_ENDED) {
        this.stopped = true;
        this.onEnded();
        return;
      }
      this.onState("offline");
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  frame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (typeof frame.seq === "number" && (this.lastSeq === null || frame.seq > this.lastSeq)) this.lastSeq = frame.seq;
    if (frame.type === "resync") {
      this.needsReload = true;
      return;
    }
    if (frame.type === "ready") {
      this.attempt = 0;
      this.onState("online");
      if (this.needsReload) {
        this.needsReload = false;
        this.reload();
      }
      return;
    }
    if (this.loading) this.held.push(frame);
    else this.onEvent(frame);
  }

  retryReload() {
    if (!this.needsReload) return;
    this.needsReload = false;
    this.reload();
  }

  async reload() {
    this.loading = true;
    try {
      await this.onReload();
    } catch (err) {
      // The server went away mid-reload (or answered an error): try again, on this socket or the next one.
      console.warn("reload failed, retrying", err);
      this.needsReload = true;
      this.timer = setTimeout(() => this.socket && this.socket.readyState === WebSocket.OPEN && this.retryReload(), 2000);
    } finally {
      this.loading = false;
      const held = this.held;
      this.held = [];
      held.forEach((frame) => this.onEvent(frame));
    }
  }
}
