// Alert sounds generated with WebAudio (no audio files): a pattern of tones per alert kind.

const PATTERNS = {
  // by the server's sound name
  alarm: [[880, 0.16, 0.08], [660, 0.16, 0.08], [880, 0.16, 0.08], [660, 0.24, 0]],
  chime: [[880, 0.22, 0.04], [660, 0.4, 0]],
  alert: [[740, 0.16, 0.1], [740, 0.2, 0]],
  // emergencies (fire, smoke, falls): a rising two-tone siren, unlike any other cue
  emergency: [[660, 0.12, 0], [990, 0.12, 0], [660, 0.12, 0], [990, 0.12, 0], [660, 0.12, 0], [990, 0.12, 0.1],
    [660, 0.12, 0], [990, 0.12, 0], [660, 0.12, 0], [990, 0.3, 0]],
  // by severity, for sounds this console does not know
  // [frequency Hz, duration s, gap s] ...
  critical: [[988, 0.18, 0.06], [740, 0.18, 0.06], [988, 0.18, 0.06], [740, 0.18, 0.06], [988, 0.3, 0]],
  high: [[880, 0.16, 0.08], [660, 0.16, 0.08], [880, 0.24, 0]],
  medium: [[740, 0.16, 0.1], [740, 0.2, 0]],
  low: [[600, 0.2, 0]],
  info: [[520, 0.15, 0]],
};

export class AlertSound {
  constructor() {
    this.ctx = null;
    this.muted = localStorage.getItem("smartcity.muted") === "1";
    // observable by operators' tooling and by the browser test
    this.stats = { played: 0, oscillators: 0, lastSound: null, lastState: null };
  }

  /** Create or resume the AudioContext; call from a user gesture (login, unmute). */
  unlock() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!this.ctx) this.ctx = new Ctx();
    if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
  }

  setMuted(muted) {
    this.muted = muted;
    localStorage.setItem("smartcity.muted", muted ? "1" : "0");
    if (!muted) this.unlock();
  }

  /** Play the cue for an alert; `sound` is the server's name for it, `severity` picks the
   * pattern, an emergency (fire, smoke, fall) has its own. */
  play(sound, severity = "high", emergency = false) {
    if (this.muted) return false;
    this.unlock();
    if (!this.ctx) return false;
    if (emergency) sound = "emergency";
    const pattern = emergency ? PATTERNS.emergency
      : severity === "critical" ? PATTERNS.critical : PATTERNS[sound] || PATTERNS[severity] || PATTERNS.high;
    let t = this.ctx.currentTime + 0.02;
    for (const [freq, dur, gap] of pattern) {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.type = sound === "chime" ? "sine" : sound === "emergency" ? "sawtooth" : "triangle";
      osc.frequency.setValueAtTime(freq, t);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.35, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + dur);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(t);
      osc.stop(t + dur + 0.02);
      this.stats.oscillators += 1;
      t += dur + gap;
    }
    this.stats.played += 1;
    this.stats.lastSound = sound;
    this.stats.lastState = this.ctx.state;
    document.body.dataset.alertSounds = String(this.stats.played);
    return true;
  }
}
