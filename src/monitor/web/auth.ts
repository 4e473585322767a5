/**
 * The monitor's user token: pasted once into the login form, kept in this
 * tab's sessionStorage (gone when the tab closes, never in a cookie the
 * browser would send on its own), and sent as a bearer header on every API
 * call and on the live-events stream.
 */
const TOKEN_KEY = "panda.monitor.token";

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    // Storage off (a privacy setting): the monitor still reads an open server.
    return null;
  }
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The request headers with `Authorization: Bearer <token>` added when a token is stored. */
export function withToken(headers: Record<string, string> = {}): Record<string, string> {
  const token = storedToken();
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}
