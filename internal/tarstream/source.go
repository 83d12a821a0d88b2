package tarstream

// Source is archive bytes not yet read, Len of them: the rest of one
// message from the network, say. ReadFull puts the next len(dst) bytes into
// dst, the caller's own buffer, so they are copied once, from where they
// arrived to where they are kept; Next lends up to n of them (at least one)
// in a buffer valid until the next call. Both fail on a read error; asking
// for more than Len is a bug of the caller.
type Source interface {
	Len() int
	ReadFull(dst []byte) error
	Next(n int) ([]byte, error)
}

// SourceStage is a Stage that reads a member's contents from the Source
// itself, into the buffers it keeps them in. WriteFrom reads exactly n
// content bytes of m; it stands for Write(Contents, m, those bytes).
type SourceStage interface {
	Stage
	WriteFrom(m *Member, src Source, n int) error
}

// WriteFrom hands n content bytes of m from src to next: to its WriteFrom
// when next is a SourceStage, else in borrowed chunks to its Write.
func WriteFrom(next Stage, m *Member, src Source, n int) error {
	if s, ok := next.(SourceStage); ok {
		return s.WriteFrom(m, src, n)
	}
	return Chunks(next, m, src, n)
}

// Chunks hands n content bytes of m from src to next's Write, in the chunks
// src lends: for stages that look at the bytes rather than keep them.
func Chunks(next Stage, m *Member, src Source, n int) error {
	for n > 0 {
		p, err := src.Next(n)
		if err != nil {
			return err
		}
		if err := next.Write(Contents, m, p); err != nil {
			return err
		}
		n -= len(p)
	}
	return nil
}

// Skip reads n bytes of src and drops them.
func Skip(src Source, n int) error {
	for n > 0 {
		p, err := src.Next(n)
		if err != nil {
			return err
		}
		n -= len(p)
	}
	return nil
}

// bytesSource is a Source over a chunk already in memory.
type bytesSource struct{ b []byte }

func (s *bytesSource) Len() int { return len(s.b) }

func (s *bytesSource) ReadFull(dst []byte) error {
	s.b = s.b[copy(dst, s.b):]
	return nil
}

func (s *bytesSource) Next(n int) ([]byte, error) {
	p := s.b[:min(n, len(s.b))]
	s.b = s.b[len(p):]
	return p, nil
}
