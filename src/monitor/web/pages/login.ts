/** The sign-in page: asks for a token and keeps it for the app's API calls. */
import { storeToken } from "../auth.js";
import { h, message } from "../dom.js";

/**
 * The form shown when the server needs a user token to read (or refused the
 * stored one): paste a token once; it is checked against `GET /api/v1/whoami`
 * before it is kept, so a typo is told at once rather than on every page.
 */
export function loginPage(root: HTMLElement, reason: string, onSignedIn: () => void): void {
  const input = h("input", {
    id: "login-token",
    type: "password",
    autocomplete: "off",
    placeholder: "panda_...",
    "aria-label": "user token",
  });
  const status = h("p", { id: "login-status", class: "muted" });
  const form = h(
    "form",
    {
      id: "login",
      class: "login",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void signIn(input.value.trim(), status, onSignedIn);
      },
    },
    h("label", { for: "login-token" }, "User token"),
    input,
    h("button", { type: "submit", id: "login-submit" }, "Sign in"),
    status,
  );
  root.replaceChildren(
    h("h1", {}, "Sign in"),
    message(reason, "error"),
    h(
      "p",
      {},
      "This server needs a user token to read. Paste one (`panda token create`, or the token in .panda/local.json for `panda up`). It is kept in this tab only, until the tab closes.",
    ),
    form,
  );
  input.focus();
}

async function signIn(token: string, status: HTMLElement, onSignedIn: () => void): Promise<void> {
  if (token === "") {
    status.textContent = "paste a token first";
    return;
  }
  status.textContent = "checking...";
  const res = await fetch("/api/v1/whoami", {
    headers: { accept: "application/json", authorization: `Bearer ${token}` },
  }).catch(() => null);
  const body = (await res?.json().catch(() => null)) as {
    principal?: { user?: string } | null;
    error?: { message?: string };
  } | null;
  if (!res?.ok || !body?.principal?.user) {
    status.textContent = `not signed in: ${body?.error?.message ?? (res ? `${res.status} ${res.statusText}` : "the server did not answer")}`;
    return;
  }
  storeToken(token);
  onSignedIn();
}
