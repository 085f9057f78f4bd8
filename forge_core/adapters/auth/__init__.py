"""Authentication: OIDC bearer tokens (JWKS), the platform's own signing key, and the
GitHub Actions token exchange."""
