//! The site map: a ROS map_server map (`map.yaml` + PGM or PNG image) read, thresholded into an
//! occupancy grid and rendered as the PNG and metadata the dashboard draws.
//!
//! Plain code apart from reading the two files: `parse_yaml`, `decode_image` and `render` are
//! pure and tested on bytes.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest map accepted, in cells (e.g. 8192 × 8192: 410 m square at 5 cm).
pub const MAX_CELLS: usize = 8192 * 8192;

/// Grey levels of the rendered map (those of map_saver's trinary output).
pub const OCCUPIED: u8 = 0;
pub const FREE: u8 = 254;
pub const UNKNOWN: u8 = 205;

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid map yaml: {0}")]
    Yaml(String),
    #[error("invalid map image: {0}")]
    Image(String),
}

/// `map.yaml` as map_server reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapYaml {
    pub image: String,
    pub resolution: f64,
    /// x, y (metres) and yaw of the lower-left pixel in the map frame.
    pub origin: [f64; 3],
    #[serde(default)]
    pub negate: u8,
    #[serde(default = "default_occupied")]
    pub occupied_thresh: f64,
    #[serde(default = "default_free")]
    pub free_thresh: f64,
    /// `trinary` (default), `scale` or `raw`; all are drawn as trinary here.
    #[serde(default)]
    pub mode: Option<String>,
}

fn default_occupied() -> f64 {
    0.65
}

fn default_free() -> f64 {
    0.196
}

/// What `/api/map` returns.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MapMeta {
    pub name: String,
    /// Metres per cell.
    pub resolution: f64,
    pub origin: MapOrigin,
    pub width: u32,
    pub height: u32,
    /// Where the rendered image is served.
    #[schema(value_type = String)]
    pub image: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MapOrigin {
    pub x: f64,
    pub y: f64,
    pub yaw: f64,
}

/// A loaded map: metadata and the rendered PNG (row 0 at the top, as in the source image).
#[derive(Debug, Clone)]
pub struct MapAsset {
    pub meta: MapMeta,
    pub png: Vec<u8>,
}

/// A grey image as read from the file: `width × height` samples of 0..=`max`, row 0 at top.
#[derive(Debug, Clone, PartialEq)]
pub struct GreyImage {
    pub width: u32,
    pub height: u32,
    pub max: u16,
    pub samples: Vec<u16>,
}

pub fn parse_yaml(text: &str) -> Result<MapYaml, MapError> {
    let y: MapYaml = serde_yaml::from_str(text).map_err(|e| MapError::Yaml(e.to_string()))?;
    if !(y.resolution.is_finite() && y.resolution > 0.0 && y.resolution <= 100.0) {
        return Err(MapError::Yaml(format!(
            "resolution {} is not in (0, 100] m",
            y.resolution
        )));
    }
    if !y.origin.iter().all(|v| v.is_finite()) {
        return Err(MapError::Yaml("origin is not finite".into()));
    }
    if !(0.0..=1.0).contains(&y.free_thresh)
        || !(0.0..=1.0).contains(&y.occupied_thresh)
        || y.free_thresh > y.occupied_thresh
    {
        return Err(MapError::Yaml(format!(
            "thresholds must satisfy 0 <= free_thresh ({}) <= occupied_thresh ({}) <= 1",
            y.free_thresh, y.occupied_thresh
        )));
    }
    if y.negate > 1 {
        return Err(MapError::Yaml("negate must be 0 or 1".into()));
    }
    Ok(y)
}

/// Reads a PGM (P5 binary or P2 text, 8 or 16 bit) or a PNG (grey or colour, averaged).
pub fn decode_image(bytes: &[u8]) -> Result<GreyImage, MapError> {
    if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        decode_pgm(bytes)
    } else if bytes.starts_with(b"\x89PNG") {
        decode_png(bytes)
    } else {
        Err(MapError::Image("not a PGM (P5/P2) or PNG image".to_owned()))
    }
}

fn check_size(width: u64, height: u64) -> Result<usize, MapError> {
    let cells = width.saturating_mul(height);
    if width == 0 || height == 0 || cells > MAX_CELLS as u64 {
        return Err(MapError::Image(format!(
            "{width}×{height} is empty or over {MAX_CELLS} cells"
        )));
    }
    Ok(cells as usize)
}

fn decode_pgm(bytes: &[u8]) -> Result<GreyImage, MapError> {
    let bad = |what: &str| MapError::Image(format!("PGM: {what}"));
    // Header: magic, width, height, maxval, separated by whitespace and `#` comments.
    let mut pos = 2;
    let mut fields = [0u64; 3];
    for field in &mut fields {
        loop {
            match bytes.get(pos) {
                Some(b'#') => {
                    while bytes.get(pos).is_some_and(|&b| b != b'\n') {
                        pos += 1;
                    }
                }
                Some(b) if b.is_ascii_whitespace() => pos += 1,
                Some(_) => break,
                None => return Err(bad("truncated header")),
            }
        }
        let start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        *field = std::str::from_utf8(&bytes[start..pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad header number"))?;
    }
    let [width, height, max] = fields;
    if !(1..=65535).contains(&max) {
        return Err(bad("maxval must be 1-65535"));
    }
    let cells = check_size(width, height)?;
    let binary = bytes[1] == b'5';
    let samples = if binary {
        // Exactly one whitespace byte after maxval.
        pos += 1;
        let wide = max > 255;
        let need = cells * if wide { 2 } else { 1 };
        let data = bytes
            .get(pos..pos + need)
            .ok_or_else(|| bad("fewer pixels than the header says"))?;
        if wide {
            data.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect()
        } else {
            data.iter().map(|&b| u16::from(b)).collect()
        }
    } else {
        let text = std::str::from_utf8(&bytes[pos..]).map_err(|_| bad("P2 data is not text"))?;
        let samples: Vec<u16> = text
            .split_ascii_whitespace()
            .take(cells)
            .map(|t| t.parse::<u16>().map_err(|_| bad("bad P2 sample")))
            .collect::<Result<_, _>>()?;
        if samples.len() != cells {
            return Err(bad("fewer pixels than the header says"));
        }
        samples
    };
    if samples.iter().any(|&s| u64::from(s) > max) {
        return Err(bad("a sample is above maxval"));
    }
    Ok(GreyImage {
        width: width as u32,
        height: height as u32,
        max: max as u16,
        samples,
    })
}

fn decode_png(bytes: &[u8]) -> Result<GreyImage, MapError> {
    let bad = |e: &dyn std::fmt::Display| MapError::Image(format!("PNG: {e}"));
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
    let (w, h) = {
        let info = reader.info();
        (info.width, info.height)
    };
    check_size(u64::from(w), u64::from(h))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad(&"image too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
    let channels = frame.color_type.samples();
    let data = &buf[..frame.buffer_size()];
    let samples = data
        .chunks_exact(channels)
        .map(|px| {
            // Grey, grey+alpha, RGB, RGBA: average the colour channels, ignore alpha.
            let colour = if channels >= 3 { &px[..3] } else { &px[..1] };
            (colour.iter().map(|&c| u32::from(c)).sum::<u32>() / colour.len() as u32) as u16
        })
        .collect();
    Ok(GreyImage {
        width: w,
        height: h,
        max: 255,
        samples,
    })
}

/// Thresholds `image` as map_server does (occupancy p = (max - v) / max, or v / max when
/// negated; above `occupied_thresh` occupied, below `free_thresh` free, else unknown) and
/// renders the grey PNG served to the dashboard.
pub fn render(yaml: &MapYaml, image: &GreyImage) -> Result<Vec<u8>, MapError> {
    let max = f64::from(image.max);
    let pixels: Vec<u8> = image
        .samples
        .iter()
        .map(|&v| {
            let v = f64::from(v);
            let p = if yaml.negate == 1 {
                v / max
            } else {
                (max - v) / max
            };
            if p > yaml.occupied_thresh {
                OCCUPIED
            } else if p < yaml.free_thresh {
                FREE
            } else {
                UNKNOWN
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| MapError::Image(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| MapError::Image(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| MapError::Image(e.to_string()))?;
    Ok(out)
}

/// Reads `map.yaml` and the image it names (relative to the yaml's folder).
pub fn load(path: &Path) -> Result<MapAsset, MapError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| MapError::Read {
            path: p.to_owned(),
            source,
        })
    };
    let text = String::from_utf8(read(path)?)
        .map_err(|_| MapError::Yaml("the file is not UTF-8".into()))?;
    let yaml = parse_yaml(&text)?;
    let image_path = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&yaml.image);
    let image = decode_image(&read(&image_path)?)?;
    let png = render(&yaml, &image)?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("map")
        .to_owned();
    Ok(MapAsset {
        meta: MapMeta {
            name,
            resolution: yaml.resolution,
            origin: MapOrigin {
                x: yaml.origin[0],
                y: yaml.origin[1],
                yaw: yaml.origin[2],
            },
            width: image.width,
            height: image.height,
            image: "/api/map/image",
        },
        png,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "image: m.pgm\nresolution: 0.05\norigin: [-3.0, -2.5, 0.0]\n\
                        negate: 0\noccupied_thresh: 0.65\nfree_thresh: 0.196\n";

    fn pgm(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
        let mut b = format!("P5\n# made by a test\n{width} {height}\n255\n").into_bytes();
        b.extend_from_slice(pixels);
        b
    }

    fn png_pixels(png_bytes: &[u8]) -> Vec<u8> {
        decode_image(png_bytes)
            .unwrap()
            .samples
            .iter()
            .map(|&s| s as u8)
            .collect()
    }

    #[test]
    fn yaml_reads_and_checks() {
        let y = parse_yaml(YAML).unwrap();
        assert_eq!(y.origin, [-3.0, -2.5, 0.0]);
        assert_eq!(y.mode, None);
        for bad in [
            "image: m.pgm\nresolution: 0\norigin: [0,0,0]\n",
            "image: m.pgm\nresolution: .nan\norigin: [0,0,0]\n",
            "image: m.pgm\nresolution: 0.05\norigin: [0,0]\n",
            "image: m.pgm\nresolution: 0.05\norigin: [0,0,0]\nfree_thresh: 0.9\noccupied_thresh: 0.1\n",
            "image: m.pgm\nresolution: 0.05\norigin: [0,0,0]\nnegate: 2\n",
            "image: m.pgm\nresolution: 0.05\norigin: [0,0,0]\ncolour: blue\n",
        ] {
            assert!(parse_yaml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thresholds_follow_map_server() {
        // 0 = black (occupied), 254 = white (free), 205 = map_saver's unknown grey.
        let image = decode_image(&pgm(4, 1, &[0, 254, 205, 100])).unwrap();
        let y = parse_yaml(YAML).unwrap();
        let out = png_pixels(&render(&y, &image).unwrap());
        // p(100) = 155/255 = 0.61: between the thresholds, unknown.
        assert_eq!(out, vec![OCCUPIED, FREE, UNKNOWN, UNKNOWN]);
        let negated = MapYaml { negate: 1, ..y };
        let out = png_pixels(&render(&negated, &image).unwrap());
        assert_eq!(out, vec![FREE, OCCUPIED, OCCUPIED, UNKNOWN]);
    }

    #[test]
    fn pgm_variants_decode() {
        let ascii = b"P2\n3 2\n15\n0 15 7\n1 2 3\n";
        let img = decode_image(ascii).unwrap();
        assert_eq!((img.width, img.height, img.max), (3, 2, 15));
        assert_eq!(img.samples, vec![0, 15, 7, 1, 2, 3]);
        let mut wide = b"P5 2 1 65535\n".to_vec();
        wide.extend([0xff, 0xff, 0x00, 0x01]);
        assert_eq!(decode_image(&wide).unwrap().samples, vec![65535, 1]);
    }

    #[test]
    fn bad_images_are_errors() {
        for bad in [
            b"GIF89a".to_vec(),
            b"P5\n2 2\n255\n\x00\x00".to_vec(), // short
            b"P5\n0 2\n255\n".to_vec(),
            b"P5\n99999 99999\n255\n".to_vec(),
            b"P5\n2 1\n0\n\x00\x00".to_vec(),
            b"P2\n2 1\n15\n3 99\n".to_vec(), // above maxval
            b"P5\n# only a comment".to_vec(),
            b"\x89PNG\r\n\x1a\nbroken".to_vec(),
        ] {
            assert!(decode_image(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn png_maps_decode_and_round_trip() {
        let y = parse_yaml(YAML).unwrap();
        let image = decode_image(&pgm(2, 2, &[0, 254, 254, 0])).unwrap();
        let rendered = render(&y, &image).unwrap();
        // A PNG map (as map_saver can write) reads back the same.
        let again = decode_image(&rendered).unwrap();
        assert_eq!((again.width, again.height), (2, 2));
        assert_eq!(
            png_pixels(&render(&y, &again).unwrap()),
            vec![0, 254, 254, 0]
        );
    }

    #[test]
    fn the_demo_map_loads() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/maps/demo.yaml"
        ));
        let map = load(path).unwrap();
        assert_eq!(map.meta.name, "demo");
        assert!(map.meta.width > 100 && map.meta.height > 100);
        assert!(map.png.starts_with(b"\x89PNG"));
    }
}
