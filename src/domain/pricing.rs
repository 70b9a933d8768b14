//! Prices for an event: one price per seated section, and ticket tiers (GENERAL, VIP,
//! EARLY_BIRD, …) that divide a general-admission section's capacity.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::money::{Currency, PriceCents};
use super::validation::{text, FieldErrors};
use super::venue::SectionKind;

/// A section of the event's venue, as pricing needs to know it.
#[derive(Debug, Clone)]
pub struct VenueSection {
    pub section_id: Uuid,
    pub kind: SectionKind,
    pub capacity: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SectionPrice {
    pub section_id: Uuid,
    pub price: PriceCents,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub section_id: Uuid,
    pub name: String,
    pub price: PriceCents,
    pub quantity: i32,
    pub max_per_order: i32,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

/// A validated price list.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub currency: Currency,
    pub sections: Vec<SectionPrice>,
    pub tiers: Vec<Tier>,
}

pub struct SectionPriceInput {
    pub section_id: Uuid,
    pub price_cents: i64,
}

pub struct TierInput {
    pub section_id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub quantity: i64,
    pub max_per_order: i64,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

impl Pricing {
    /// Checks prices against the venue: seated sections take one price, general-admission
    /// sections take tiers whose quantities fit in the section.
    pub fn parse(
        currency: &str,
        sections: &[SectionPriceInput],
        tiers: &[TierInput],
        venue: &[VenueSection],
    ) -> Result<Pricing, FieldErrors> {
        let mut errors = FieldErrors::new();
        let currency = errors.take("currency", Currency::parse(currency));
        let by_id: HashMap<Uuid, &VenueSection> = venue.iter().map(|s| (s.section_id, s)).collect();
        if sections.is_empty() && tiers.is_empty() {
            errors.add("sections", "give at least one section price or tier");
        }

        let mut priced = HashSet::new();
        let mut section_prices = Vec::with_capacity(sections.len());
        for (i, input) in sections.iter().enumerate() {
            let at = format!("sections[{i}]");
            match by_id.get(&input.section_id) {
                None => errors.add(
                    format!("{at}.section_id"),
                    "not a section of this event's venue",
                ),
                Some(s) if s.kind != SectionKind::Seated => errors.add(
                    format!("{at}.section_id"),
                    "a general-admission section is priced through tiers",
                ),
                Some(_) if !priced.insert(input.section_id) => {
                    errors.add(format!("{at}.section_id"), "section priced twice")
                }
                Some(_) => {}
            }
            if let Some(price) = errors.take(
                &format!("{at}.price_cents"),
                PriceCents::parse(input.price_cents),
            ) {
                section_prices.push(SectionPrice {
                    section_id: input.section_id,
                    price,
                });
            }
        }

        let mut names = HashSet::new();
        let mut per_section: HashMap<Uuid, i64> = HashMap::new();
        let mut parsed_tiers = Vec::with_capacity(tiers.len());
        for (i, input) in tiers.iter().enumerate() {
            let at = format!("tiers[{i}]");
            match by_id.get(&input.section_id) {
                None => errors.add(
                    format!("{at}.section_id"),
                    "not a section of this event's venue",
                ),
                Some(s) if s.kind != SectionKind::GeneralAdmission => errors.add(
                    format!("{at}.section_id"),
                    "tiers are for general-admission sections",
                ),
                Some(_) => {
                    *per_section.entry(input.section_id).or_default() += input.quantity.max(0)
                }
            }
            let name = errors.take(&format!("{at}.name"), text(&input.name, 100));
            if let Some(name) = &name {
                errors.check(
                    names.insert(name.to_uppercase()),
                    format!("{at}.name"),
                    "tier names must be unique",
                );
            }
            let price = errors.take(
                &format!("{at}.price_cents"),
                PriceCents::parse(input.price_cents),
            );
            let quantity = i32::try_from(input.quantity).ok().filter(|q| *q > 0);
            errors.check(
                quantity.is_some(),
                format!("{at}.quantity"),
                "must be a positive number",
            );
            let max = i32::try_from(input.max_per_order)
                .ok()
                .filter(|m| (1..=100).contains(m));
            errors.check(
                max.is_some(),
                format!("{at}.max_per_order"),
                "must be between 1 and 100",
            );
            if let (Some(start), Some(end)) = (input.sale_starts_at, input.sale_ends_at) {
                errors.check(
                    end > start,
                    format!("{at}.sale_ends_at"),
                    "must be after sale_starts_at",
                );
            }
            if let (Some(name), Some(price), Some(quantity), Some(max_per_order)) =
                (name, price, quantity, max)
            {
                parsed_tiers.push(Tier {
                    section_id: input.section_id,
                    name,
                    price,
                    quantity,
                    max_per_order,
                    sale_starts_at: input.sale_starts_at,
                    sale_ends_at: input.sale_ends_at,
                });
            }
        }
        for (section_id, quantity) in per_section {
            if let Some(section) = by_id.get(&section_id) {
                errors.check(
                    quantity <= i64::from(section.capacity),
                    "tiers",
                    format!("tiers of section {section_id} add up to {quantity}, over its capacity of {}", section.capacity),
                );
            }
        }

        match currency {
            Some(currency) if errors.is_empty() => Ok(Pricing {
                currency,
                sections: section_prices,
                tiers: parsed_tiers,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue() -> (Uuid, Uuid, Vec<VenueSection>) {
        let seated = Uuid::new_v4();
        let floor = Uuid::new_v4();
        let sections = vec![
            VenueSection {
                section_id: seated,
                kind: SectionKind::Seated,
                capacity: 100,
            },
            VenueSection {
                section_id: floor,
                kind: SectionKind::GeneralAdmission,
                capacity: 50,
            },
        ];
        (seated, floor, sections)
    }

    fn tier(section_id: Uuid, name: &str, quantity: i64) -> TierInput {
        TierInput {
            section_id,
            name: name.into(),
            price_cents: 5000,
            quantity,
            max_per_order: 4,
            sale_starts_at: None,
            sale_ends_at: None,
        }
    }

    #[test]
    fn seated_sections_take_prices_and_floors_take_tiers() {
        let (seated, floor, sections) = venue();
        let pricing = Pricing::parse(
            "EUR",
            &[SectionPriceInput {
                section_id: seated,
                price_cents: 7500,
            }],
            &[tier(floor, "GENERAL", 40), tier(floor, "VIP", 10)],
            &sections,
        );
        assert!(pricing.is_ok_and(|p| p.tiers.len() == 2 && p.sections[0].price.get() == 7500));
    }

    #[test]
    fn kinds_may_not_be_mixed_and_tiers_must_fit() {
        let (seated, floor, sections) = venue();
        let errors = Pricing::parse(
            "EUR",
            &[SectionPriceInput {
                section_id: floor,
                price_cents: 100,
            }],
            &[
                tier(seated, "GENERAL", 1),
                tier(floor, "A", 40),
                tier(floor, "B", 11),
            ],
            &sections,
        )
        .err()
        .map(FieldErrors::into_inner)
        .unwrap_or_default();
        for field in ["sections[0].section_id", "tiers[0].section_id", "tiers"] {
            assert!(
                errors.contains_key(field),
                "{field} missing from {errors:?}"
            );
        }
    }

    #[test]
    fn unknown_sections_negative_prices_and_duplicates_are_refused() {
        let (seated, floor, sections) = venue();
        let errors = Pricing::parse(
            "usd",
            &[
                SectionPriceInput {
                    section_id: Uuid::new_v4(),
                    price_cents: 1,
                },
                SectionPriceInput {
                    section_id: seated,
                    price_cents: -1,
                },
            ],
            &[tier(floor, "VIP", 0), tier(floor, "vip", 1)],
            &sections,
        )
        .err()
        .map(FieldErrors::into_inner)
        .unwrap_or_default();
        for field in [
            "currency",
            "sections[0].section_id",
            "sections[1].price_cents",
            "tiers[0].quantity",
            "tiers[1].name",
        ] {
            assert!(
                errors.contains_key(field),
                "{field} missing from {errors:?}"
            );
        }
    }
}
