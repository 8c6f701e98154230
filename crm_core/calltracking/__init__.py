"""Call tracking: static and pool numbers, visits, attribution, costs, the marketers'
report.

- ``models``: numbers, sites, pools, visits, leases, attributions, ad costs
- ``services``: numbers, sites, pools and costs as the marketer manages them
- ``leases``: the pool-number lease algorithm (storage-free)
- ``attribution``: which visit or channel a call came from
- ``report``: calls, revenue, cost and ROI by channel, source or campaign
"""
