"""``python -m chatpay``: the same as the ``chatpay`` command."""

from chatpay.cli import main

raise SystemExit(main())
