"""The composition root's choices that more than one entry point shares.

Features subscribe to core events here and nowhere else: the call writer (core)
runs the task rules, call-tracking attribution and the ``call.ended`` webhook only
because this module hands them to it, for ``serve``, ``ami-replay``, the demo and the
tests alike.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.hooks import CallHooks
from crm_core.calltracking.attribution import attribute_written, describe_tracking
from crm_core.calltracking.leads import match_callback_calls
from crm_core.integrations.hooks import call_ended_events
from crm_core.people.users import party_directory
from crm_core.tasks.leads import card_task_rule
from crm_core.tasks.services import CallbackPolicy, call_rules
from pbx_bridge.channels import PartyRules
from telecrm.settings import Settings


def call_hooks(callback_policy: CallbackPolicy | None = None) -> CallHooks:
    """What the product does with every written call, and the call JSON's feature fields:
    the task rules (callbacks; «Заполните карточку» for a lead an unknown caller created),
    call-tracking attribution, the visit's source on a call a callback request placed,
    and last the ``call.ended`` webhook (its call JSON carries what the hooks before it
    filled in)."""
    describers = (describe_tracking,)
    return CallHooks(written=(call_rules(callback_policy), card_task_rule(callback_policy),
                              attribute_written, match_callback_calls,
                              call_ended_events(describers)),
                     describers=describers)


async def party_rules(session: AsyncSession, settings: Settings) -> PartyRules:
    """How the call tracker tells each phone's owner: the users table plus the named trunks.

    Devices and mobiles come from the users table, so a manager is named by his
    extension whichever phone he used; ``TELECRM_TRUNKS`` names the carrier trunks whose
    endpoint names would otherwise pass for extensions. Built for ``serve`` (and rebuilt
    as users change) and for ``ami-replay``.
    """
    directory = await party_directory(session)
    return PartyRules(trunks=settings.trunk_names, supervisors=directory.supervisors,
                      devices=directory.devices, mobiles=directory.mobiles)
