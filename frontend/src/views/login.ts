import { api, ApiError } from "../api";
import { h, plain } from "../dom";
import type { App } from "./common";

export function loginView(_app: App, done: () => void): HTMLElement {
  const token = h("input", { type: "password", name: "token", placeholder: "API token", autocomplete: "current-password" });
  const user = h("input", { type: "text", name: "username", placeholder: "username", autocomplete: "username" });
  const pass = h("input", { type: "password", name: "password", placeholder: "password", autocomplete: "current-password" });
  const error = h("p", { class: "error-text", role: "alert" });
  const form = h("form", { class: "card login" },
    h("h2", {}, "Sign in to Conveyor"),
    h("p", { class: "muted" }, "Use the dashboard token, or a username and password."),
    token, h("div", { class: "or" }, "or"), user, pass, error,
    h("button", { class: "primary", type: "submit" }, "Sign in"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body: Record<string, string> = {};
    if (token.value) body.token = token.value;
    if (user.value) { body.username = user.value; body.password = pass.value; }
    api.login(body).then(done, (err: unknown) => {
      error.textContent = plain(err instanceof ApiError ? err.message : String(err));
    });
  });
  return h("section", { class: "center" }, form);
}
