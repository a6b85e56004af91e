"""Staff sign-in and sign-out."""

from flask import Flask

from pro_app.auth.views import bp, init_login_manager


def init_app(app: Flask) -> None:
    init_login_manager(app)
    app.register_blueprint(bp)
