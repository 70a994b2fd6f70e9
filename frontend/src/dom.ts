// A tiny DOM builder. Text always goes in through textContent, never innerHTML, so whatever a
// job's name, data or error contains is shown as text and can never run.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === "class") {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

// Bidirectional controls (embeddings, overrides, isolates) reorder the text around them, so a
// job's data or error could make what is shown read differently from what is stored. Each is
// shown as its code point instead.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function plain(text: string): string {
  return text.replace(BIDI_CONTROLS, (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}>`);
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(plain(String(child))));
  }
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return "—";
  return duration(Math.max(now - ms, 0)) + " ago";
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  // One decimal below 10 ms ("0.4 ms", "2.3 ms"), whole milliseconds above, so a value reads
  // the same wherever it is shown.
  if (ms <= 0) return "0 ms";
  if (ms < 0.05) return "< 0.1 ms";
  if (ms < 10) return `${Number(ms.toFixed(1))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 60) return `${Math.floor(m)} min ${Math.round(s % 60)} s`;
  const hours = m / 60;
  if (hours < 48) return `${Math.floor(hours)} h ${Math.round(m % 60)} min`;
  return `${Math.floor(hours / 24)} d ${Math.round(hours % 24)} h`;
}

export function stamp(ms: number | null | undefined): string {
  if (!ms) return "—";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

export function pretty(value: unknown): string {
  if (value === undefined) return "—";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function num(n: number): string {
  return n.toLocaleString();
}
