"""``analogsim roles`` and ``analogsim map``: a model's layers, their roles and placements.

Imports of the API (torch and above) sit inside the command bodies so that
``analogsim --help`` stays fast: the documented exception to imports at module top.
"""

from __future__ import annotations

import dataclasses

from rich.table import Table

from analogsim.cli.options import DeviceOpt, JsonOpt, MappingOpt, ModelArg, console, print_json


def roles_cmd(model: ModelArg, json_out: JsonOpt = False) -> None:
    """Every weight layer of a model with its role (attention, mlp, embedding, head, conv, other)."""
    from analogsim.mapping.roles import model_roles  # lazy: start-up time
    from analogsim.models import load_model

    lm = load_model(model)
    roles = model_roles(lm.model)
    if json_out:
        print_json(
            {
                "family": roles.family,
                "layers": [dataclasses.asdict(layer) for layer in roles.layers],
                "unclassified": roles.unclassified,
            }
        )
        return
    table = Table(title=f"{model}: roles (family {roles.family})")
    for col in ("layer", "kind", "role", "in", "out", "params", "tied to", "why"):
        table.add_column(col, overflow="fold")
    for layer in roles.layers:
        table.add_row(
            layer.name,
            layer.kind,
            layer.role,
            str(layer.in_features),
            str(layer.out_features),
            f"{layer.params:,}",
            layer.tied_to or "",
            layer.reason,
        )
    console.print(table)
    if roles.unclassified:
        console.print(
            f"[yellow]could not classify (role 'other'):[/yellow] {', '.join(roles.unclassified)}"
        )


def map_cmd(
    model: ModelArg,
    mapping: MappingOpt = "all_analog",
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Where each layer goes (analog / digital), on which device and tiles, and which rule decided it."""
    from analogsim.mapping.rules import load_mapping, resolve_plan  # lazy: start-up time
    from analogsim.models import load_model

    lm = load_model(model)
    plan = resolve_plan(lm.model, load_mapping(mapping).with_device(device))
    totals = plan.totals()
    counted = plan.counted_params()
    owner = {name: group[0] for group in totals["tied_groups"] for name in group[1:]}
    if json_out:
        layers = [
            {**p.as_dict(), "params_counted": counted[p.name][0], "tied_owner": owner.get(p.name)}
            for p in plan.layers
        ]
        print_json(
            {
                "mapping": plan.mapping.name,
                "family": plan.family,
                "layers": layers,
                "totals": totals,
            }
        )
        return
    by_name = plan.by_name()
    table = Table(title=f"{model} on {plan.mapping.name}")
    for col in ("layer", "role", "placement", "device", "tiles", "params", "MACs/token", "rule"):
        table.add_column(col, overflow="fold")
    for p in plan.layers:
        place = p.placement + (f" int{p.quantizer.bits}" if p.quantizer else "")
        table.add_row(
            p.name,
            p.role,
            place,
            p.device.name if p.device else "",
            str(p.tiles()) if p.tiles() else "",
            f"tied to {owner[p.name]}" if p.name in owner else f"{p.params:,}",
            f"{p.macs_per_token:,}",
            p.rule,
        )
    console.print(table)
    console.print(
        f"analog: {totals['analog_layers']}/{totals['layers']} layers, "
        f"{totals['analog_param_share']:.1%} of {totals['params']:,} parameters, "
        f"{totals['analog_mac_share']:.1%} of MACs, {totals['tiles']} tiles"
    )
    for group in totals["tied_groups"]:
        places = {by_name[n].placement for n in group}
        where = (
            places.pop()
            if len(places) == 1
            else "split: " + ", ".join(f"{n} {by_name[n].placement}" for n in group)
        )
        console.print(
            f"tied (one weight, counted once under {group[0]}): {' = '.join(group)} ({where})"
        )
