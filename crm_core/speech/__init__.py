"""Speech records: transcripts, sales-script (KKP) versions, check results and their review.

- ``models``: Transcript, KkpResult, KkpScriptVersion, KkpReview, KkpAppeal,
  QcScorecard, QcScore
- ``transcripts``: storing transcripts and check results
- ``scripts``: script versions per team and stage
- ``review``: the QC queue, confirmed fines and dismissals
- ``scorecards``: scorecard versions, reviewers' scores of calls, weekly averages
- ``appeals``: a manager disputes a confirmed fine, another reviewer cancels or keeps it
"""
