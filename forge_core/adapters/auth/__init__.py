"""Authentication: OIDC bearer tokens (JWKS), the platform's own signing key, GitHub token exchange."""
