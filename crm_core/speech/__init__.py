"""Speech records: transcripts, sales-script (KKP) versions, check results and their review.

- ``models``: Transcript, KkpResult, KkpScriptVersion, KkpReview, TranscriptPhrase,
  PhraseDictionary, KkpAppeal, QcScorecard, QcScore, QcSampleSetting, QcSample,
  SpeechAlertRule, SpeechAlert, SpeechAlertSeen
- ``transcripts``: storing transcripts (and their phrases in the search index) and check
  results
- ``words``, ``dialogue``: Russian words and lemmas; a transcript cut into phrases
- ``search``: the phrase index and full-text search over it (FTS5 / tsvector)
- ``dictionaries``: named phrase lists and their report per manager and week
- ``scripts``: script versions per team and stage
- ``review``: the QC queue, confirmed fines and dismissals
- ``scorecards``: scorecard versions, reviewers' scores of calls, weekly averages
- ``sampling``: the weekly random sample per manager
- ``calibration``: agreement of reviewers who scored the same call
- ``appeals``: a manager disputes a confirmed fine, another reviewer cancels or keeps it
- ``alerts``: rules that tell supervisors when a dictionary is said, and their alerts
"""
