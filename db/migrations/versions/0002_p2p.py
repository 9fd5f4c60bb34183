"""P2P books: per-snapshot aggregates and a covering index for the metrics, and the seed
mapping of payment method identifiers to canonical codes.

Revision ID: 0002_p2p
Revises: 0001
Create Date: 2026-11-21

Why the aggregates: history over 30 days of one-minute snapshots reads one row per side and
bucket from p2p_snapshots (an index-only scan of the covering index) instead of every advert
of every snapshot. Filters (amount, payment method, merchants, completion) still read the
adverts, of the chosen snapshots only. The seed is data: more mappings are added by setting
payment_methods.canonical, without code changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_p2p"
down_revision = "0001"
branch_labels = None
depends_on = None

# (exchange, identifier, name, canonical): identifiers are the exchanges' own stable codes
# (Binance tradeMethods[].identifier, OKX paymentMethods[], Bybit payments[] ids).
SEED = [
    ("binance", "BANK", "Bank Transfer", "bank_transfer"),
    ("binance", "KaspiBank", "Kaspi Bank", "kaspi_bank"),
    ("binance", "HalykBank", "Halyk Bank", "halyk_bank"),
    ("binance", "JysanBank", "Jysan Bank", "jysan_bank"),
    ("binance", "ForteBank", "ForteBank", "forte_bank"),
    ("binance", "Tinkoff", "Tinkoff", "tinkoff"),
    ("binance", "TinkoffNew", "Tinkoff", "tinkoff"),
    ("binance", "RosBank", "Rosbank", "rosbank"),
    ("binance", "RosBankNew", "Rosbank", "rosbank"),
    ("binance", "RaiffeisenBankRussia", "Raiffeisenbank", "raiffeisen"),
    ("binance", "YandexMoney", "YooMoney", "yoomoney"),
    ("binance", "YandexMoneyNew", "YooMoney", "yoomoney"),
    ("binance", "QIWI", "QIWI", "qiwi"),
    ("binance", "Payeer", "Payeer", "payeer"),
    ("binance", "Advcash", "AdvCash", "advcash"),
    ("binance", "Wise", "Wise", "wise"),
    ("binance", "Revolut", "Revolut", "revolut"),
    ("binance", "BankofGeorgia", "Bank of Georgia", "bank_of_georgia"),
    ("binance", "TBCbank", "TBC Bank", "tbc_bank"),
    ("binance", "Monobank", "Monobank", "monobank"),
    ("binance", "PrivatBank", "PrivatBank", "privatbank"),
    ("binance", "MercadoPagoNew", "Mercadopago", "mercadopago"),
    ("okx", "bank", "Bank transfer", "bank_transfer"),
    ("okx", "aliPay", "Alipay", "alipay"),
    ("okx", "wxPay", "WeChat Pay", "wechat_pay"),
    ("bybit", "14", "Bank Transfer", "bank_transfer"),
    ("bybit", "51", "Payeer", "payeer"),
    ("bybit", "62", "QIWI", "qiwi"),
    ("bybit", "64", "Raiffeisenbank", "raiffeisen"),
    ("bybit", "165", "TBC Bank", "tbc_bank"),
    ("bybit", "382", "SBP", "sbp"),
    ("bybit", "383", "MIR", "mir"),
    ("bybit", "581", "Tinkoff", "tinkoff"),
    ("bybit", "582", "Rosbank", "rosbank"),
    ("bybit", "583", "Alfa-Bank", "alfabank"),
    ("bybit", "585", "Sberbank", "sberbank"),
]

SEED_SQL = sa.text(
    "INSERT INTO payment_methods (exchange, identifier, name, canonical) "
    "VALUES (:exchange, :identifier, :name, :canonical) "
    "ON CONFLICT (exchange, identifier) DO UPDATE SET canonical = EXCLUDED.canonical "
    "WHERE payment_methods.canonical IS NULL")


def upgrade() -> None:
    op.execute("ALTER TABLE p2p_snapshots ADD COLUMN best_price numeric CHECK (best_price > 0), "
               "ADD COLUMN liquidity numeric CHECK (liquidity >= 0)")
    op.execute("DROP INDEX p2p_snapshots_latest_idx")
    op.execute("CREATE INDEX p2p_snapshots_complete_idx ON p2p_snapshots "
               "(exchange, asset, fiat, side, captured_at DESC) "
               "INCLUDE (best_price, liquidity, offers) WHERE complete")
    op.execute("CREATE INDEX payment_methods_canonical_idx ON payment_methods "
               "(canonical, exchange) WHERE canonical IS NOT NULL")
    rows = [dict(zip(("exchange", "identifier", "name", "canonical"), seed, strict=True))
            for seed in SEED]
    op.get_bind().execute(SEED_SQL, rows)


def downgrade() -> None:
    bind = op.get_bind()
    for exchange, identifier, _name, canonical in SEED:
        bind.execute(sa.text("DELETE FROM payment_methods WHERE exchange = :e "
                             "AND identifier = :i AND canonical = :c"),
                     {"e": exchange, "i": identifier, "c": canonical})
    op.execute("DROP INDEX payment_methods_canonical_idx")
    op.execute("DROP INDEX p2p_snapshots_complete_idx")
    op.execute("CREATE INDEX p2p_snapshots_latest_idx "
               "ON p2p_snapshots (exchange, asset, fiat, side, captured_at DESC) WHERE complete")
    op.execute("ALTER TABLE p2p_snapshots DROP COLUMN best_price, DROP COLUMN liquidity")
