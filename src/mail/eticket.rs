//! The e-ticket PDF of an order (one A4 page per ticket: the event, the place, the time in
//! the venue's time zone, and the ticket's QR code drawn as vector squares) and the QR code
//! as a PNG for the e-mail's inline images.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// One ticket as its page shows it.
pub struct TicketPage {
    pub event: String,
    pub when: String,
    pub venue: String,
    pub label: String,
    pub ticket: String,
    /// What the QR code encodes (the signed code the door checks).
    pub code: String,
}

/// Latin-1 for the standard Helvetica font; other characters become `?`.
pub(crate) fn text(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .ok()
                .filter(|b| *b >= 0x20)
                .unwrap_or(b'?')
        })
        .collect()
}

/// The QR modules of `code`, `width` × `width`, dark = true.
fn modules(code: &str) -> Option<(usize, Vec<bool>)> {
    let qr =
        qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = qr.width();
    let dark = qr
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Some((width, dark))
}

/// A PDF of A4 pages with Helvetica as `F1`, one content stream each.
fn document(pages: Vec<Content>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let (catalog, tree, font) = (Ref::new(1), Ref::new(2), Ref::new(3));
    let ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(10 + 2 * i as i32))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().copied())
        .count(pages.len() as i32);
    pdf.type1_font(font)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (i, content) in pages.into_iter().enumerate() {
        let (page_id, content_id) = (ids[i], Ref::new(11 + 2 * i as i32));
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .parent(tree)
            .contents(content_id);
        page.resources().fonts().pair(Name(b"F1"), font);
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

/// A line of text at (56, `y`) in `size` points.
fn line(content: &mut Content, size: f32, y: f32, text_: &str) {
    content.begin_text();
    content.set_font(Name(b"F1"), size);
    content.next_line(56.0, y);
    content.show(Str(&text(text_)));
    content.end_text();
}

/// The order's tickets as a PDF, one page each.
pub fn pdf(pages: &[TicketPage]) -> Vec<u8> {
    let contents = pages
        .iter()
        .map(|ticket| {
            let mut content = Content::new();
            let lines: [(f32, &str, f32); 5] = [
                (24.0, &ticket.event, 770.0),
                (14.0, &ticket.when, 740.0),
                (14.0, &ticket.venue, 720.0),
                (20.0, &ticket.label, 680.0),
                (10.0, &ticket.ticket, 655.0),
            ];
            for (size, text_, y) in lines {
                line(&mut content, size, y, text_);
            }
            if let Some((width, dark)) = modules(&ticket.code) {
                let cell = 300.0 / width as f32;
                content.set_fill_rgb(0.0, 0.0, 0.0);
                for (k, on) in dark.iter().enumerate() {
                    if *on {
                        let (x, y) = ((k % width) as f32, (k / width) as f32);
                        content.rect(56.0 + x * cell, 600.0 - (y + 1.0) * cell, cell, cell);
                    }
                }
                content.fill_nonzero();
            }
            line(
                &mut content,
                10.0,
                270.0,
                "Show this code at the door. One entry per ticket.",
            );
            content
        })
        .collect();
    document(contents)
}

/// A document of text lines on A4 pages (size in points, then the line), Helvetica, a new
/// page when one is full: what an invoice needs.
pub fn text_pdf(lines: &[(f32, String)]) -> Vec<u8> {
    const TOP: f32 = 780.0;
    const BOTTOM: f32 = 60.0;
    let mut pages = vec![Content::new()];
    let mut y = TOP;
    for (size, text_) in lines {
        y -= size * 1.5;
        if y < BOTTOM {
            pages.push(Content::new());
            y = TOP - size * 1.5;
        }
        if let Some(page) = pages.last_mut() {
            line(page, *size, y, text_);
        }
    }
    document(pages)
}

/// The QR code of `code` as a PNG (6 pixels a module, a quiet zone of 4).
pub fn qr_png(code: &str) -> Option<Vec<u8>> {
    let (width, dark) = modules(code)?;
    let (scale, quiet) = (6usize, 4usize);
    let side = (width + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (k, on) in dark.iter().enumerate() {
        if !on {
            continue;
        }
        let (mx, my) = (k % width + quiet, k / width + quiet);
        for dy in 0..scale {
            let row = (my * scale + dy) * side;
            for dx in 0..scale {
                pixels[row + mx * scale + dx] = 0;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&pixels).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_ticket_and_a_png_per_code() {
        let page = |n: u32| TicketPage {
            event: "Night of Tests — Lyon".into(),
            when: "Sat 1 May 2027, 20:00 (Europe/Paris)".into(),
            venue: "Test Hall, 1 Rue de Test".into(),
            label: format!("A A-{n}"),
            ticket: format!("Ticket {n}"),
            code: format!("BX1.code-{n}"),
        };
        let bytes = pdf(&[page(1), page(2)]);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        // Two pages and the page tree.
        assert_eq!(text.matches("/Type /Page").count(), 3, "{text}");
        let png = qr_png("BX1.code-1").unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"));
    }
}
