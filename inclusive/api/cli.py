"""``flask --app inclusive create-api-token --partner SLUG --name NAME``: a token, shown once."""

from __future__ import annotations

import click

from inclusive.extensions import db
from inclusive.partners.services import partner_by_slug
from inclusive.referrals import endpoints


@click.command("create-api-token")
@click.option("--partner", "partner_slug", required=True, help="The capital partner's slug.")
@click.option("--name", required=True, help="What the token is for, such as its system's name.")
def create_api_token_command(partner_slug: str, name: str) -> None:
    """Create an API token for a capital partner and print it, once: only its hash is kept."""
    partner = partner_by_slug(partner_slug)
    if partner is None:
        raise click.ClickException(f"No capital partner has the slug {partner_slug!r}.")
    try:
        token, plain = endpoints.create_token(partner, name, None)
    except endpoints.EndpointError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created API token {token.prefix} ({token.name}) for {partner.name}.", err=True)
    click.echo("Copy it now; it will not be shown again:", err=True)
    click.echo(plain)
