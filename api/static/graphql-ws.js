// A client for GraphQL subscriptions over one WebSocket, speaking graphql-transport-ws
// (connection_init/ack, ping/pong, subscribe/next/error/complete). It reconnects with a
// growing delay and subscribes again; `onStatus` hears "live" after each acknowledgement.

export class LiveSocket {
  constructor(url, initPayload, onStatus) {
    this.url = url;
    this.initPayload = initPayload; // a function: read when (re)connecting, so a new key applies
    this.onStatus = onStatus;
    this.operations = new Map();
    this.nextId = 1;
    this.delay = 500;
    this.connect();
  }

  connect() {
    const ws = (this.ws = new WebSocket(this.url, "graphql-transport-ws"));
    this.acked = false;
    this.onStatus("connecting");
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: this.initPayload() }));
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const op = this.operations.get(message.id);
      if (message.type === "connection_ack") {
        this.acked = true;
        this.delay = 500;
        for (const [id, { payload }] of this.operations) this.send({ id, type: "subscribe", payload });
        this.onStatus("live");
      } else if (message.type === "ping") {
        this.send({ type: "pong" });
      } else if (message.type === "next" && op) {
        op.onNext(message.payload);
      } else if (message.type === "error" && op) {
        op.onError(message.payload);
      }
    };
    ws.onclose = (event) => {
      this.acked = false;
      if (this.closed) return;
      this.onStatus(`disconnected (${event.code}${event.reason ? ": " + event.reason : ""}), retrying`);
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    };
  }

  // Start a subscription; the function it returns stops it.
  subscribe(query, variables, onNext, onError = console.error) {
    const id = String(this.nextId++);
    const payload = { query, variables };
    this.operations.set(id, { payload, onNext, onError });
    if (this.acked) this.send({ id, type: "subscribe", payload });
    return () => {
      this.operations.delete(id);
      if (this.acked) this.send({ id, type: "complete" });
    };
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    this.closed = true;
    this.ws.close(1000);
  }
}
