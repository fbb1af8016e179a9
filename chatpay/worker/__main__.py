"""``python -m chatpay.worker``: the same as ``chatpay-worker``."""

from chatpay.worker import main

raise SystemExit(main())
