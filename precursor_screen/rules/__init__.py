"""Rules: conversion rules (``conversions``) as data in ``data/`` with their test molecules."""

from precursor_screen.rules.conversions import (
    ConversionRule,
    RuleSet,
    load_conversion_rules,
)

__all__ = ["ConversionRule", "RuleSet", "load_conversion_rules"]
