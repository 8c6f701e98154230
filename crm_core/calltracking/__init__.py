"""Call tracking: static and pool numbers, visits, attribution, leads, costs, the
marketers' reports.

- ``models``: numbers, sites, pools, visits, leases, attributions, ad costs
- ``services``: numbers, sites, pools and costs as the marketer manages them
- ``leases``: the pool-number lease algorithm (storage-free)
- ``attribution``: which visit or channel a call came from
- ``ad_models``: costs imported by campaign and day, the ad systems' accounts, conversions
  sent once and the upload log
- ``cost_import``: Yandex Direct, VK Ads and Google Ads export files, booked idempotently
- ``conversions``: what calls and won deals are for Metrica and Google Ads, their files
- ``report``: calls, leads, revenue, cost and ROI by channel, source or campaign
- ``leads``: site forms and callback requests as leads with the visit's source, their
  client and manager, and the callback call's source (a call hook)
- ``lead_reports``: by keyword, by landing page, lost leads, first and last touch
"""
