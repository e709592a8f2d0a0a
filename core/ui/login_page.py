"""`/login`: where the collector's viewer asks for an API key with the read scope (the local viewer has none)."""

from __future__ import annotations

from tracewire.ui.markup import esc, page


def render(message: str = "", next_path: str = "", where: str = "") -> str:
    """The form; `message` says why the last key was refused, `next_path` is where a good key goes on to."""
    said = f'<p class="empty error" id="login-error">{esc(message)}</p>' if message else ""
    return page("Sign in", (
        '<h1>Sign in</h1>'
        '<p>Paste an API key of this collector with the <code>read</code> scope '
        '(<code>tracewire keys create --project P --scope read</code>). It shows that key\'s project only.</p>'
        f'{said}<form class="filters login" method="post" action="/login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<label>API key <input type="password" name="key" id="api-key" autocomplete="off" required></label>'
        '<button type="submit">Sign in</button></form>'), subtitle=where)
