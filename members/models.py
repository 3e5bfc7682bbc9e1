from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac


class MemberManager(BaseUserManager["Member"]):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> "Member":
        # Addresses are stored lower-cased; people type them however they like.
        if not isinstance(email, str) or len(email) > 254:
            raise self.model.DoesNotExist("No member has that email.")
        return self.get(email=email.lower())

    def _create(self, email: str, password: str | None, **fields) -> "Member":
        if not email:
            raise ValueError("A member needs an email address.")
        member = self.model(email=self.normalize_email(email).lower(), **fields)
        member.set_password(password)
        member.full_clean(exclude=["password"])
        member.save(using=self._db)
        return member

    def create_user(self, email: str, password: str | None = None, **fields) -> "Member":
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "Member":
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class Member(AbstractBaseUser, PermissionsMixin):
    """A club member; the email address is the login. Staff are members with admin rights."""

    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=150)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # One Stripe Customer per member, created on the first pre-order and reused ever after.
    stripe_customer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # Raised to sign out every other session ("Sign out everywhere else"): it is part of the
    # session's auth hash, like the password.
    session_epoch = models.PositiveIntegerField(default=0)
    # Set when the member left the club: the row stays, pseudonymised (docs/member-data.md).
    left_at = models.DateTimeField(null=True, blank=True)

    objects = MemberManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        # The staff roles' permissions (members/roles.py): views ask for these, not for groups.
        permissions = [
            ("review_presale", "Can prepare events and pools and decide pre-orders"),
            (
                "manage_presale",
                "Can run charges and refunds and manage members, invitations and staff roles",
            ),
            ("check_in_tickets", "Can check tickets in at the door"),
        ]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="member_email_ci_unique"),
            models.CheckConstraint(
                condition=~models.Q(stripe_customer_id=""), name="member_customer_id_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>"

    def _session_hash(self, secret=None) -> str:
        # Epoch 0 keeps Django's own hash, so sessions made before this field stay valid.
        value = self.password if not self.session_epoch else f"{self.password}:{self.session_epoch}"
        return salted_hmac(
            "members.Member.session_auth_hash", value, secret=secret, algorithm="sha256"
        ).hexdigest()

    def get_session_auth_hash(self) -> str:
        if not self.session_epoch:
            return super().get_session_auth_hash()
        return self._session_hash()

    def get_session_auth_fallback_hash(self):
        if not self.session_epoch:
            yield from super().get_session_auth_fallback_hash()
            return
        for fallback_secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret=fallback_secret)

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Invitation(models.Model):
    """A single-use, expiring invitation to join. Only a SHA-256 of the token is stored, so a
    leaked database does not leak working links."""

    email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invitation",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="invitation_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True, accepted_by__isnull=True)
                | models.Q(accepted_at__isnull=False, accepted_by__isnull=False),
                name="invitation_accepted_fields_together",
            ),
            # At most one usable invitation per address: re-inviting revokes the older one.
            models.UniqueConstraint(
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"
