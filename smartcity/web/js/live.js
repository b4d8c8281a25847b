// WebRTC live view: a receive-only peer connection whose (non-trickle) offer goes to the server
// through the startLiveView mutation; counts decoded frames and reports codec and frame rate.

let knownIceServers = []; // from the last answer: used by the next connection (TURN behind NAT)

function waitIceGathering(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    // a host without network interfaces may never finish: go with what was gathered
    const timer = setTimeout(() => { pc.removeEventListener("icegatheringstatechange", done); resolve(); }, timeoutMs);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

export class LiveView extends EventTarget {
  constructor(api, video) {
    super();
    this.api = api;
    this.video = video;
    this.pc = null;
    this.frames = 0;
    this.codec = null;
    this.pixelated = true;
    this.fps = 0;
    this.statsTimer = null;
    this.frameHandle = null;
    this.session = 0;
  }

  emit(state, detail = {}) {
    this.state = state;
    this.video.dataset.liveState = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  async start(cameraId, { unpixelated = false } = {}) {
    this.stop();
    const session = ++this.session;
    this.emit("connecting");
    const pc = new RTCPeerConnection({ iceServers: knownIceServers });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (ev) => {
      const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      this.video.srcObject = stream;
      this.video.muted = true;
      this.video.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (session !== this.session) return;
      const s = pc.connectionState;
      if (s === "connected") this.emit("playing", { pixelated: this.pixelated });
      else if (s === "failed") this.emit("failed", { message: "the connection to the camera failed" });
      else if (s === "disconnected") this.emit("connecting", { message: "connection interrupted…" });
    });
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitIceGathering(pc);
      if (session !== this.session) return;
      const d = await this.api.gql(
        `mutation($cam: ID!, $sdp: String!, $raw: Boolean!) {
           r: startLiveView(cameraId: $cam, offerSdp: $sdp, unpixelated: $raw) {
             __typename
             ... on LiveViewAnswer { sdp iceServers pixelated }
             ... on ValidationError { message }
             ... on NotAuthorized { message }
             ... on NotFoundError { message } } }`,
        { cam: cameraId, sdp: pc.localDescription.sdp, raw: unpixelated },
      );
      if (session !== this.session) return;
      if (d.r.__typename !== "LiveViewAnswer") throw new Error(d.r.message);
      this.pixelated = d.r.pixelated;
      if (Array.isArray(d.r.iceServers) && d.r.iceServers.length) {
        knownIceServers = d.r.iceServers;
        try { pc.setConfiguration({ iceServers: knownIceServers }); } catch { /* applies next time */ }
      }
      await pc.setRemoteDescription({ type: "answer", sdp: d.r.sdp });
      this.countFrames(session);
      this.statsTimer = setInterval(() => this.readStats(session), 1000);
    } catch (err) {
      if (session === this.session) {
        this.emit("failed", { message: err.message });
        this.closePc();
      }
    }
  }

  countFrames(session) {
    const v = this.video;
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const tick = () => {
      if (session !== this.session) return;
      this.frames += 1;
      v.dataset.frames = String(this.frames);
      this.frameHandle = v.requestVideoFrameCallback(tick);
    };
    this.frameHandle = v.requestVideoFrameCallback(tick);
  }

  async readStats(session) {
    if (!this.pc || session !== this.session) return;
    const report = await this.pc.getStats();
    let inbound = null;
    const codecs = new Map();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
      if (s.type === "codec") codecs.set(s.id, s.mimeType);
    });
    if (!inbound) return;
    this.codec = (codecs.get(inbound.codecId) || "").replace("video/", "") || null;
    const now = inbound.framesDecoded || 0;
    this.fps = this.lastDecoded === undefined ? 0 : Math.max(0, now - this.lastDecoded);
    this.lastDecoded = now;
    this.dispatchEvent(new CustomEvent("stats", {
      detail: { codec: this.codec, fps: this.fps, framesDecoded: now, width: inbound.frameWidth, height: inbound.frameHeight },
    }));
  }

  closePc() {
    if (this.pc) {
      try { this.pc.close(); } catch { /* already closed */ }
    }
    this.pc = null;
  }

  stop() {
    this.session += 1;
    clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.lastDecoded = undefined;
    if (this.frameHandle !== null && this.video.cancelVideoFrameCallback) this.video.cancelVideoFrameCallback(this.frameHandle);
    this.frameHandle = null;
    this.closePc();
    if (this.video.srcObject) {
      for (const t of this.video.srcObject.getTracks()) t.stop();
      this.video.srcObject = null;
    }
    if (this.state && this.state !== "stopped") this.emit("stopped");
  }
}
