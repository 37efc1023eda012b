from django.urls import path

from .mydata import MyDataApi
from .orders import OrderDetailApi, OrderListApi
from .products import ProductDetailApi, ProductListApi
from .stats import SalesStatsApi

urlpatterns = [
    path("products/", ProductListApi.as_view(), name="product-list"),
    path(
        "products/<str:product_id>/", ProductDetailApi.as_view(), name="product-detail"
    ),
    path("orders/", OrderListApi.as_view(), name="order-list"),
    path("orders/<str:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
    path("stats/sales/", SalesStatsApi.as_view(), name="sales-stats"),
    path("me/data/", MyDataApi.as_view(), name="my-data"),
]
