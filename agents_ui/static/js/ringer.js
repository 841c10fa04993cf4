// The sound and the desktop notification of an incoming offer. Browsers allow sound and
// notifications only after the user did something on the page; `prime` is called on login.
let audio = null;
let ringing = null;

export function prime() {
  try { audio = audio || new AudioContext(); } catch { audio = null; }
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

function beep() {
  if (!audio || audio.state === "closed") return;
  if (audio.state === "suspended") audio.resume().catch(() => {});
  const now = audio.currentTime;
  for (const [offset, freq] of [[0, 880], [0.25, 660]]) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.15, now + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + offset);
    osc.stop(now + offset + 0.22);
  }
}

export function ring(on) {
  if (on && !ringing) { beep(); ringing = setInterval(beep, 2000); }
  if (!on && ringing) { clearInterval(ringing); ringing = null; }
}

export function notify(title, body, tag) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const n = new Notification(title, { body, tag, requireInteraction: true });
    n.onclick = () => { window.focus(); n.close(); };
    return n;
  } catch { return null; } // some browsers only allow notifications from a service worker
}
