"""View decorators for staff pages: each asks for one permission of members.roles."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from members.roles import PERM_CHECK_IN, PERM_MANAGE, PERM_REVIEW

View = Callable[..., HttpResponse]


def permission_required(permission: str, refusal: str) -> Callable[[View], View]:
    """Anonymous visitors are sent to sign in; signed-in people without the permission get 403
    (not a sign-in loop, as Django's own decorator would give them)."""

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not (request.user.is_active and request.user.has_perm(permission)):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


reviewer_required = permission_required(PERM_REVIEW, "Staff only.")
manager_required = permission_required(PERM_MANAGE, "Managers only.")
door_required = permission_required(PERM_CHECK_IN, "Door staff only.")
