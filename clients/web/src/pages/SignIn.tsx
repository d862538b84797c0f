import { useState } from "preact/hooks";
import { ApiError, post } from "../api";
import { navigate } from "../router";

/** Sign in with an API key or a token; the gateway keeps it in an HttpOnly session cookie. */
export function SignIn({ next }: { next: string | null }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Only a path of this app: never send a visitor on to another site after signing in.
  const target = next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/sign-in") ? next : "/";

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post("/api/session", { token: token.trim() });
      navigate(target, true);
    } catch (failure) {
      setError(failure instanceof ApiError && failure.status === 401 ? "This key or token was not accepted." : String((failure as Error).message));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="sign-in">
      <form onSubmit={submit} data-testid="sign-in">
        <h1>framevault</h1>
        <p class="muted">Sign in with an API key or a token.</p>
        <label>
          API key or token
          <input type="password" name="token" autoComplete="off" autoFocus value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)} required />
        </label>
        {error && <div class="error" role="alert">{error}</div>}
        <button type="submit" disabled={busy || !token.trim()}>Sign in</button>
      </form>
    </div>
  );
}
