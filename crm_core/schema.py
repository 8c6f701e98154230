"""Every table of the product: importing this registers each feature's models.

Alembic, the schema tests and the session factory import it, so a relationship
named by a string (``"Client"``) always finds its class, whichever feature a
process happened to import first, and every session keeps the client search words
(``crm_core.clients.search``) whoever writes a client.
"""

from crm_core.activities import models as activities_models
from crm_core.audit import AuditLog
from crm_core.calls.models import Call, CallLeg, Recording
from crm_core.calltracking import ad_models as calltracking_ad_models
from crm_core.calltracking import models as calltracking_models
from crm_core.clients import search as clients_search  # keeps the search words on every flush
from crm_core.clients.models import Client, ClientSearchTerm, Contact, Email, Phone
from crm_core.db.base import Base
from crm_core.dialer import models as dialer_models
from crm_core.integrations import models as integrations_models
from crm_core.missed import models as missed_models
from crm_core.pbxes.models import Pbx
from crm_core.people.models import Team, User, UserDeactivation, UserPhone, WebSession
from crm_core.presence import models as presence_models
from crm_core.recordings import models as recordings_models
from crm_core.routing import models as routing_models
from crm_core.sales import models as sales_models
from crm_core.speech import models as speech_models
from crm_core.talktime import models as talktime_models
from crm_core.tasks.models import Task

metadata = Base.metadata

# What the migrations create outside the models: each backend's own full-text index of
# transcript phrases (migration 0024). Alembic's comparisons leave these alone.
NOT_MODELLED_TABLES = ("transcript_phrases_fts",  # and FTS5's shadow tables beside it
                       "transcript_call_words")  # PostgreSQL: the calls' lemmas (0035)
NOT_MODELLED_COLUMNS = {("transcript_phrases", "search_vector")}
NOT_MODELLED_INDEXES = {"ix_transcript_phrases_search_vector"}


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    """Alembic's filter: False for the database objects the models do not describe."""
    if not reflected or name is None:
        return True
    if type_ == "table":
        return not name.startswith(NOT_MODELLED_TABLES)
    if type_ == "column":
        table = getattr(getattr(obj, "table", None), "name", None)
        return (table, name) not in NOT_MODELLED_COLUMNS
    if type_ == "index":
        return name not in NOT_MODELLED_INDEXES
    return True


__all__ = [
    "NOT_MODELLED_COLUMNS", "NOT_MODELLED_INDEXES", "NOT_MODELLED_TABLES",
    "AuditLog", "Base", "Call", "CallLeg", "Client", "ClientSearchTerm", "Contact", "Email",
    "Pbx", "Phone", "Recording", "Task", "Team", "User", "UserDeactivation", "UserPhone",
    "WebSession",
    "activities_models", "calltracking_ad_models", "calltracking_models", "clients_search",
    "dialer_models", "include_object", "integrations_models", "metadata", "missed_models",
    "presence_models", "recordings_models",
    "routing_models", "sales_models", "speech_models", "talktime_models",
]
