"""Pieces every Klients component shares: token verification and rights checks (`auth`), the grants
model (`grants`), the nameko dependency that enforces rights inside services (`nameko_auth`), the
persistent RPC client used by Flask apps (`rpc`), database helpers (`db`) and the error vocabulary
(`errors`)."""
