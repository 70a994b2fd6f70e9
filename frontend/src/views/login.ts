import { api, ApiError } from "../api";
import { h, plain } from "../dom";
import type { App } from "./common";

export function loginView(_app: App, done: () => void): HTMLElement {
  const token = h("input", { type: "password", name: "token", placeholder: "API token", autocomplete: "current-password" });
  const user = h("input", { type: "text", name: "username", placeholder: "username", autocomplete: "username" });
  const pass = h("input", { type: "password", name: "password", placeholder: "password", autocomplete: "current-password" });
  const error = h("p", { class: "error-text", role: "alert" });
  const submit = h("button", { class: "primary", type: "submit", "data-testid": "sign-in" }, "Sign in");
  const form = h("form", { class: "card login" },
    h("h1", { class: "login-title" }, "Sign in to Conveyor"),
    h("p", { class: "muted" }, "Use the dashboard token, or a username and password."),
    token, h("div", { class: "or" }, "or"), user, pass, error, submit);
  let timer: number | undefined;
  /** After too many failed guesses the server answers 429 with Retry-After: the button stays
   * off and counts down, since trying sooner only restarts the wait. */
  function holdFor(seconds: number, serverMessage: string): void {
    // The server's words name the wait once; the count here stays current instead.
    const message = serverMessage.replace(/[:;,.]?\s*try again in \d+ s\.?$/i, "") + ".";
    const until = Date.now() + seconds * 1000;
    submit.disabled = true;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0 || !form.isConnected) {
        submit.disabled = false;
        submit.textContent = "Sign in";
        error.textContent = plain(message);
        return;
      }
      submit.textContent = `Try again in ${left} s`;
      error.textContent = plain(`${message} Wait ${left} s before the next try.`);
      timer = window.setTimeout(tick, 250);
    };
    window.clearTimeout(timer);
    tick();
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body: Record<string, string> = {};
    if (token.value) body.token = token.value;
    if (user.value) { body.username = user.value; body.password = pass.value; }
    api.login(body).then(done, (err: unknown) => {
      if (err instanceof ApiError && err.status === 429 && err.retryAfter) {
        holdFor(err.retryAfter, err.message);
        return;
      }
      error.textContent = plain(err instanceof ApiError ? err.message : String(err));
    });
  });
  return h("section", { class: "center" }, form);
}
