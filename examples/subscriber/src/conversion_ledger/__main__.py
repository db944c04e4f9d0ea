"""``python -m conversion_ledger``: run the subscriber until Ctrl-C."""

import asyncio
import logging

from conversion_ledger.app import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
asyncio.run(create_app().run())
