"""Account errors a caller must tell apart; each message is fit to show to an admin."""


class AccountError(ValueError):
    """An account action cannot be done; the message says why."""


class PasswordPolicyError(AccountError):
    """A new password is too weak."""


class UnknownUser(AccountError):
    """No user has that name or id."""


class UserExists(AccountError):
    """The username is taken (names are compared without case)."""
