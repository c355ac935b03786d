//! model-vs-human's 16 categories and the ImageNet class indices each one takes
//! the mean over (bethgelab/model-vs-human, `modelvshuman/helper/human_categories.py`,
//! the `<category>_indices` lists of `HumanCategories`; 207 indices in all),
//! in the sorted category order its `get_human_object_recognition_categories`
//! returns. Facts carried over as data; the decision rule is
//! `--class-map-rule mean` (`datasets/decision_mappings.py`).

/// (category, ImageNet indices), categories sorted.
pub const CATEGORIES: [(&str, &[usize]); 16] = [
    ("airplane", &[404]),
    ("bear", &[294, 295, 296, 297]),
    ("bicycle", &[444, 671]),
    (
        "bird",
        &[
            8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90,
            91, 92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137,
            138, 139, 140, 141, 142, 143, 144, 145,
        ],
    ),
    ("boat", &[472, 554, 625, 814, 914]),
    ("bottle", &[440, 720, 737, 898, 899, 901, 907]),
    ("car", &[436, 511, 817]),
    ("cat", &[281, 282, 283, 284, 285, 286]),
    ("chair", &[423, 559, 765, 857]),
    ("clock", &[409, 530, 892]),
    (
        "dog",
        &[
            152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168,
            169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185,
            186, 187, 188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203,
            205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221,
            222, 223, 224, 225, 226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
            240, 241, 243, 244, 245, 246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259,
            261, 262, 263, 265, 266, 267, 268,
        ],
    ),
    ("elephant", &[385, 386]),
    ("keyboard", &[508, 878]),
    ("knife", &[499]),
    ("oven", &[766]),
    ("truck", &[555, 569, 656, 675, 717, 734, 864, 867]),
];

/// The `--class-map` name of this map.
pub const MAP_NAME: &str = "model-vs-human-16";

/// The map as `--class-map` lines read it: (model class index, category).
pub fn lines() -> Vec<(String, String)> {
    CATEGORIES
        .iter()
        .flat_map(|(c, idx)| idx.iter().map(move |i| (i.to_string(), c.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_hold_207_distinct_indices_in_sorted_categories() {
        let mut all: Vec<usize> = CATEGORIES
            .iter()
            .flat_map(|(_, i)| i.iter().copied())
            .collect();
        assert_eq!(all.len(), 207);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 207);
        assert!(all.iter().all(|&i| i < 1000));
        assert!(CATEGORIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(lines().len(), 207);
    }
}
