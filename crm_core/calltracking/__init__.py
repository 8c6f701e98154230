"""Call tracking: static and pool numbers, visits, attribution, costs, the marketers'
report.

- ``models``: numbers, sites, pools, visits, leases, attributions, ad costs
- ``services``: numbers, sites, pools and costs as the marketer manages them
- ``leases``: the pool-number lease algorithm (storage-free)
- ``attribution``: which visit or channel a call came from
- ``report``: calls, revenue, cost and ROI by channel, source or campaign
- ``ad_models``: costs imported by campaign and day, the ad systems' accounts, conversions
  sent once and the upload log
- ``cost_import``: Yandex Direct, VK Ads and Google Ads export files, booked idempotently
- ``conversions``: what calls and won deals are for Metrica and Google Ads, their files
"""
