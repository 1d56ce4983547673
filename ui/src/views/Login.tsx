import { useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { ApiError, request, setCsrfToken } from "../api";
import type { Me } from "../api";

export default function Login({ onLogin }: { onLogin: (me: Me) => void }) {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await request<{ user: Me["user"]; csrf_token?: string }>(
        "POST",
        "/api/v1/auth/login",
        { body: { username, password }, quiet401: true },
      );
      setCsrfToken(answer.csrf_token ?? null);
      onLogin({ user: answer.user, auth: true });
      const next = params.get("next");
      // Only paths of this app: a crafted ?next= must not send the user elsewhere.
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/experiments");
    } catch (exc) {
      setError(exc instanceof ApiError ? exc.message : "the server did not answer");
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="login card" onSubmit={submit}>
      <h2>Log in to loopline</h2>
      <label>
        User name
        <input
          name="username"
          autoComplete="username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          autoFocus
          required
        />
      </label>
      <label>
        Password
        <input
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
        />
      </label>
      {error ? (
        <div className="error" role="alert">
          {error}
        </div>
      ) : null}
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Logging in…" : "Log in"}
      </button>
    </form>
  );
}
