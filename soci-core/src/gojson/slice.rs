//! `GoSlice`: a slice being decoded, keeping Go's backing-array reuse.

/// A Go slice while it is being decoded: Go decodes a repeated key's array into the SAME backing
/// array, element by element, and elements past the current length survive a truncation and
/// reappear if a later array is longer. `GoSlice` keeps that backing store so duplicate keys
/// give Go's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSlice<T> {
    backing: Vec<T>,
    len: Option<usize>,
}

impl<T> Default for GoSlice<T> {
    fn default() -> Self {
        Self {
            backing: Vec::new(),
            len: None,
        }
    }
}

impl<T: Default> GoSlice<T> {
    /// Starts from a current value (`None` = nil slice).
    pub fn from_option(value: Option<Vec<T>>) -> Self {
        match value {
            Some(backing) => {
                let len = backing.len();
                Self {
                    backing,
                    len: Some(len),
                }
            }
            None => Self::default(),
        }
    }

    /// Starts from a slice where empty and nil are not distinguished (`omitempty` fields).
    pub fn from_vec(value: Vec<T>) -> Self {
        Self::from_option(Some(value))
    }

    /// The resulting slice (`None` = nil).
    pub fn into_option(self) -> Option<Vec<T>> {
        let mut backing = self.backing;
        self.len.map(|len| {
            backing.truncate(len);
            backing
        })
    }

    /// The resulting slice, nil as empty.
    pub fn into_vec(self) -> Vec<T> {
        self.into_option().unwrap_or_default()
    }

    pub(super) fn set_nil(&mut self) {
        self.backing = Vec::new();
        self.len = None;
    }

    pub(super) fn replace(&mut self, values: Vec<T>) {
        self.len = Some(values.len());
        self.backing = values;
    }

    pub(super) fn slot(&mut self, index: usize) -> &mut T {
        while self.backing.len() <= index {
            self.backing.push(T::default());
        }
        let current_len = self.len.unwrap_or(0);
        if index >= current_len {
            self.len = Some(index + 1);
        }
        let last = self.backing.len() - 1;
        // `index <= last` holds after the loop above; `min` keeps this free of panics.
        let position = index.min(last);
        &mut self.backing[position]
    }

    pub(super) fn finish_array(&mut self, count: usize) {
        if count == 0 {
            // Go replaces an empty result by a new zero-capacity slice: the backing is gone.
            self.backing = Vec::new();
        }
        self.len = Some(count);
    }
}
