"""Outside channels that file reports without an account: residents through the WeChat official
account (`channels.wechat`) and civic apps through Open311 GeoReport v2 (`channels.open311`).
Each speaks its protocol and files through the one intake (`events.service.intake`)."""
