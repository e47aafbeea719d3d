"""Sign-in and sign-out, and Settings: API keys, share links and the signed-in browsers."""

from flask import abort, g, redirect, render_template, request, url_for

from .. import auth, schemas, shares
from . import login
from .views import _given, bp


# --- sign-in ----------------------------------------------------------------------------------

@bp.route("/signin", methods=["GET", "POST"])
def signin():
    """GET shows the form (a one-time link's token pre-filled, sent by script or by the
    button); POST signs in with a key or a token. GET never signs anyone in."""
    target = login.safe_next(request.values.get("next")) or url_for("dashboard.overview")
    error, status = None, 200
    if request.method == "POST":
        token, key = request.form.get("token", ""), request.form.get("key", "")
        if token:
            user_id = auth.redeem_signin_token(token)
            if user_id is not None:
                return login.sign_in(redirect(target), user_id)
            error = ("This sign-in link has expired or was already used. Run `opensync-lite open` for a new one, "
                     "or sign in with an API key.")
        else:
            found = auth.key_user(key) if key else None
            if found is not None:
                key_id, user_id, _ = found
                return login.sign_in(redirect(target), user_id, key_id)
            error = "That key is unknown or revoked." if key else "Enter an API key."
        status = 401
    token = request.args.get("token", "") if request.method == "GET" else ""
    return render_template("dashboard/signin.html", next=target, token=token, error=error), status


@bp.post("/signout")
def signout():
    return login.sign_out(redirect(url_for("dashboard.signin")))


# --- settings ---------------------------------------------------------------------------------

def _server_url():
    return url_for("opensync.health", _external=True).removesuffix("/health")


@bp.get("/settings")
def settings(new_key=None, status=200):
    return render_template("dashboard/settings.html", keys=auth.user_keys(g.user_id), new_key=new_key,
                           server_url=_server_url(), shares=shares.active(g.user_id), sharing=shares.state(),
                           signins=auth.user_signins(g.user_id), this_signin=login.current_signin()), status


@bp.post("/settings/keys")
def create_key():
    form = schemas.load(schemas.key_form, _given(request.form, strip=True))
    key, _ = auth.create_key(auth.user_name(g.user_id), form["label"], form.get("source"))
    # Shown on this answer only (no redirect): a key must never travel in a cookie or a URL.
    return settings(new_key=key, status=201)


@bp.post("/settings/keys/<int:key_id>/revoke")
def revoke_key(key_id):
    if not auth.revoke_user_key(g.user_id, key_id):
        abort(404, "No such active key.")
    login.notify("Key revoked: plugins using it are refused from their next request.")
    return redirect(url_for("dashboard.settings"))


@bp.post("/settings/signins/<int:signin_id>/end")
def end_signin(signin_id):
    if signin_id == login.current_signin():
        return login.sign_out(redirect(url_for("dashboard.signin")))
    if not auth.end_signins(g.user_id, only=signin_id):
        abort(404, "No such signed-in browser.")
    login.notify("That browser is signed out: its next request goes to the sign-in page.")
    return redirect(url_for("dashboard.settings") + "#signins")


@bp.post("/settings/signins/end-others")
def end_other_signins():
    ended = auth.end_signins(g.user_id, keep=login.current_signin())
    login.notify(f"Signed out {ended} other browser{'' if ended == 1 else 's'}.")
    return redirect(url_for("dashboard.settings") + "#signins")


@bp.post("/settings/signins/end-all")
def end_all_signins():
    return login.sign_out(redirect(url_for("dashboard.signin")), everywhere=True)
