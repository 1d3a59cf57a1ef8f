"""flask create-api-token: the token is printed once; only its hash is kept."""

from __future__ import annotations

from inclusive.referrals import endpoints


def test_create_api_token_prints_it_once(app, mfi):
    result = app.test_cli_runner().invoke(
        args=["create-api-token", "--partner", "andina", "--name", "Core banking"]
    )
    assert result.exit_code == 0, result.output
    plain = result.stdout.strip().splitlines()[-1]
    token = endpoints.active_token(plain)
    assert token is not None and token.partner_id == mfi.id and token.name == "Core banking"


def test_an_unknown_partner_or_empty_name_fails(app, mfi):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-api-token", "--partner", "nobody", "--name", "x"])
    assert result.exit_code != 0 and "nobody" in result.output
    result = runner.invoke(args=["create-api-token", "--partner", "andina", "--name", " "])
    assert result.exit_code != 0
    assert endpoints.tokens_of(mfi) == []
