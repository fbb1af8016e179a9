"""Payment providers behind :class:`chatpay.core.ports.PaymentProvider`."""
