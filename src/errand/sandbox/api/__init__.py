"""The sandbox's HTTP routes for machines and for a payer's browser, one router per module.

- :mod:`.tables`: the partner reservations API of ``sandbox-tables``;
- :mod:`.jobs`: the job API (search, alternatives, checkout, ledger) of every provider with one;
- :mod:`.venues`: the venues feed of every provider, web-only ones included;
- :mod:`.checkout_page`: the payment page a job API's handoff URL opens;
- :mod:`.index_page`: the front page listing providers, sites and venues.

The booking web sites of the web-only providers are :mod:`errand.sandbox.web`; the app that
composes both is :mod:`errand.sandbox.app`.
"""
